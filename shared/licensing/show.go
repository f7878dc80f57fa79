package licensing

import (
	"context"
	"sort"
	"time"
)

// LicenseDetail is everything about one license.
type LicenseDetail struct {
	LicenseView
	Keys        []IssuedKey  `json:"keys"`
	Activations []Activation `json:"activations"`
	Deliveries  []Delivery   `json:"deliveries"`
	Events      []Event      `json:"last_events"`
}

// IssuedKey is one key issued for a license: its digest's first digits
// (enough to tell keys apart), its dates, and the key itself only when
// asked for with the secret.
type IssuedKey struct {
	ID        string    `json:"id"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Key       string    `json:"license_key,omitempty"`
}

// detailEvents is how many of the latest events ShowLicense gives, and
// detailEnded how many seats that ended it gives at least (when there are
// as many).
const (
	detailEvents = 20
	detailEnded  = 20
)

// ShowLicense gathers a license (a key or id) with its keys, seats,
// deliveries and latest events. With withKeys (which needs the secret)
// the keys themselves are included.
//
// History is read across the archive's boundary (archive may be nil: the
// database alone): the latest events, from the archives when the database
// holds fewer; every delivery; every seat the database holds and, from the
// archives, the latest that ended, up to detailEnded in all. Archives are
// read newest first and only as far back as needed (and never past the
// license's creation).
func (s *Service) ShowLicense(ctx context.Context, archive Archive, ref string, withKeys bool) (LicenseDetail, error) {
	var d LicenseDetail
	now := s.now()
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		lic, err := s.resolveLicense(tx, ref)
		if err != nil {
			return err
		}
		lics := []License{lic}
		if err := fillSeats(tx, lics, now); err != nil {
			return err
		}
		d.LicenseView = LicenseView{License: lics[0], EffectiveStatus: lic.EffectiveStatus(now)}
		keys, err := tx.LicenseKeys(lic.ID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			ik := IssuedKey{ID: k.Digest[:12], IssuedAt: k.IssuedAt, ExpiresAt: k.ExpiresAt}
			if withKeys {
				box, err := s.keys.sealingKey(tx)
				if err != nil {
					return err
				}
				key, err := box.Open(k.Sealed, licenseKeyAAD(lic.ID))
				if err != nil {
					return errSecretMismatch()
				}
				ik.Key = string(key)
			}
			d.Keys = append(d.Keys, ik)
		}
		if d.Activations, err = tx.Activations(lic.ID); err != nil {
			return err
		}
		if d.Deliveries, err = tx.Deliveries(lic.ID); err != nil {
			return err
		}
		d.Events, err = tx.Events(EventFilter{LicenseID: lic.ID})
		return err
	})
	if err == nil && archive != nil {
		err = s.showArchived(ctx, archive, &d, now)
	}
	d.Events = d.Events[max(0, len(d.Events)-detailEvents):]
	return d, err
}

// showArchived adds to d what the archives hold of its license: events up
// to detailEvents, every delivery, and ended seats up to detailEnded.
func (s *Service) showArchived(ctx context.Context, archive Archive, d *LicenseDetail, now time.Time) error {
	id, since := d.License.ID, d.License.CreatedAt
	// Events: the latest, newest archive first, until there are enough.
	seen := map[int64]bool{}
	for _, e := range d.Events {
		seen[e.ID] = true
	}
	err := latestArchived(ctx, s, archive, ArchiveEvents, since, func(e Event) {
		if e.LicenseID == id && !seen[e.ID] {
			seen[e.ID] = true
			d.Events = append(d.Events, e)
		}
	}, func() bool { return len(d.Events) >= detailEvents })
	if err != nil {
		return err
	}
	sort.Slice(d.Events, func(i, j int) bool { return d.Events[i].ID < d.Events[j].ID })
	// Deliveries: all of them (a license has few).
	clear(seen)
	for _, dl := range d.Deliveries {
		seen[dl.ID] = true
	}
	err = latestArchived(ctx, s, archive, ArchiveDeliveries, since, func(dl Delivery) {
		if dl.LicenseID == id && !seen[dl.ID] {
			seen[dl.ID] = true
			d.Deliveries = append(d.Deliveries, dl)
		}
	}, func() bool { return false })
	if err != nil {
		return err
	}
	sort.Slice(d.Deliveries, func(i, j int) bool { return d.Deliveries[i].ID < d.Deliveries[j].ID })
	// Seats: those that ended, the latest, until there are enough.
	ended := 0
	have := map[string]bool{}
	for _, a := range d.Activations {
		have[seatKey(a)] = true
		if !a.Occupies(now) {
			ended++
		}
	}
	var archived []Activation
	err = latestArchived(ctx, s, archive, ArchiveActivations, since, func(a Activation) {
		if a.LicenseID == id && !have[seatKey(a)] {
			have[seatKey(a)] = true
			archived = append(archived, a)
			ended++
		}
	}, func() bool { return ended >= detailEnded })
	if err != nil {
		return err
	}
	// The latest ended first, so that the oldest are left out; then
	// listed as the database lists them: by first sighting.
	sort.SliceStable(archived, func(i, j int) bool { return archived[i].Ended().After(archived[j].Ended()) })
	extra := max(0, detailEnded-(ended-len(archived)))
	d.Activations = append(archived[:min(extra, len(archived))], d.Activations...)
	sort.SliceStable(d.Activations, func(i, j int) bool { return d.Activations[i].FirstSeen.Before(d.Activations[j].FirstSeen) })
	return nil
}

// seatKey tells apart the seats of a license: one instance's seat taken
// again after it was archived is another.
func seatKey(a Activation) string {
	return a.InstanceID + "\x00" + a.FirstSeen.UTC().Format(time.RFC3339) + "\x00" + a.LastSeen.UTC().Format(time.RFC3339)
}
