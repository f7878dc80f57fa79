package licensing

import (
	"context"
	"sort"
	"time"
)

// ReportData is what the operator report shows, read with aggregates.
type ReportData struct {
	GeneratedAt time.Time         `json:"generated_at"`
	Days        int               `json:"days"`
	Stats       Stats             `json:"stats"`
	SeatsSold   int               `json:"seats_sold"` // max instances over active licenses
	Expiring    []ExpiringLicense `json:"expiring"`
	Customers   []CustomerSeats   `json:"customers"`
	Activity    []DayCount        `json:"activity"` // seat events by day and kind
	Refusals    []RefusalCount    `json:"refusals"` // by day and code (best effort: see refusals.go)
	Deliveries  []DeliveryCount   `json:"deliveries"`
	Failures    []Delivery        `json:"failures"` // the latest failed deliveries
	// InGrace: the licenses in grace (expired, still working), the soonest
	// to stop first. Overage: the licenses holding seats above their max
	// instances, the most such seats first.
	InGrace []GraceLicense   `json:"in_grace"`
	Overage []OverageLicense `json:"overage"`
	// ArchivedDays is true when part of the window came from archives.
	ArchivedDays bool `json:"archived_days"`
}

// LicenseRef names a license in the report's tables: its id, its
// customer and its tier.
type LicenseRef struct {
	LicenseID    string `json:"license_id"`
	CustomerID   string `json:"customer_id"`
	CustomerName string `json:"customer_name"`
	Tier         string `json:"tier"`
}

func refOf(l License, customerName string) LicenseRef {
	return LicenseRef{LicenseID: l.ID, CustomerID: l.CustomerID, CustomerName: customerName, Tier: l.Tier}
}

// ExpiringLicense is an active license expiring within the report's window.
type ExpiringLicense struct {
	LicenseRef
	ExpiresAt time.Time `json:"expires_at"`
}

// GraceLicense is a license in grace: it expired at ExpiresAt and works
// until GraceEndsAt.
type GraceLicense struct {
	ExpiringLicense
	GraceEndsAt time.Time `json:"grace_ends_at"`
}

// OverageLicense is a license with overage seats: Live seats held, of
// which Overage above its MaxInstances, under an allowance of
// OveragePercent (SeatCap seats at most).
type OverageLicense struct {
	LicenseRef
	Live           int   `json:"live"`
	Overage        int   `json:"overage"`
	MaxInstances   int   `json:"max_instances"`
	OveragePercent int64 `json:"overage_percent"`
	SeatCap        int   `json:"seat_cap"`
}

// CustomerSeats is a customer's seats in use against those sold (active
// licenses only).
type CustomerSeats struct {
	CustomerID string `json:"customer_id"`
	Name       string `json:"name"`
	Used       int    `json:"used"`
	Max        int    `json:"max"`
}

// DayCount counts events of one kind on one day (UTC, YYYY-MM-DD).
type DayCount struct {
	Day   string `json:"day"`
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

// DeliveryCount counts deliveries of one kind and outcome.
type DeliveryCount struct {
	Kind    string `json:"kind"`
	Outcome string `json:"outcome"`
	Count   int    `json:"count"`
}

// maxReportFailures bounds the failures listed.
const maxReportFailures = 50

// Report gathers the operator report over the last (and next) days.
// History the database no longer holds comes from archive (when given):
// the seat activity before the database's oldest event, and the
// deliveries archived (their counts and the latest failures).
func (s *Service) Report(ctx context.Context, archive Archive, days int) (ReportData, error) {
	if err := validateDays("days", days); err != nil {
		return ReportData{}, err
	}
	now := s.now()
	since := now.Add(-time.Duration(days) * 24 * time.Hour)
	rep := ReportData{GeneratedAt: now, Days: days}
	var oldest time.Time
	var held []Delivery
	// One transaction: every figure of the page is of the same state.
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		if rep.Stats, err = statsTx(tx, now, days); err != nil {
			return err
		}
		if rep.Expiring, err = tx.ExpiringLicenses(now, now.Add(time.Duration(days)*24*time.Hour)); err != nil {
			return err
		}
		if rep.Customers, err = tx.CustomerSeats(now); err != nil {
			return err
		}
		if rep.Activity, oldest, err = tx.EventCountsByDay(since, seatEventKinds); err != nil {
			return err
		}
		if rep.Refusals, err = tx.RefusalCounts(since); err != nil {
			return err
		}
		if rep.Deliveries, err = tx.DeliveryCounts(since); err != nil {
			return err
		}
		if rep.Failures, err = tx.FailedDeliveries(since, maxReportFailures); err != nil {
			return err
		}
		if rep.InGrace, rep.Overage, err = graceAndOverage(tx, now, rep.Stats); err != nil {
			return err
		}
		if archive != nil {
			held, err = tx.Deliveries("") // to tell the archived ones apart
		}
		return err
	})
	if err != nil {
		return rep, err
	}
	for _, c := range rep.Customers {
		rep.SeatsSold += c.Max
	}
	sort.SliceStable(rep.Customers, func(i, j int) bool { return fullness(rep.Customers[i]) > fullness(rep.Customers[j]) })
	if archive == nil {
		return rep, nil
	}
	// The part of the window before the database's history: from archives.
	if oldest.IsZero() || oldest.After(since) {
		recs, err := s.archiveFiles(ctx, ArchiveEvents, since)
		if err != nil {
			return rep, err
		}
		counts := map[[2]string]int{}
		seen := map[int64]bool{}
		err = scanArchives(ctx, archive, recs, func(e Event) {
			if seatEventKinds[e.Kind] && !e.At.Before(since) && (oldest.IsZero() || e.At.Before(oldest)) && !seen[e.ID] {
				seen[e.ID] = true
				counts[[2]string{e.At.UTC().Format(time.DateOnly), e.Kind}]++
			}
		}, nil)
		if err != nil {
			return rep, err
		}
		for k, n := range counts {
			rep.Activity = append(rep.Activity, DayCount{Day: k[0], Kind: k[1], Count: n})
			rep.ArchivedDays = true
		}
		sort.Slice(rep.Activity, func(i, j int) bool {
			a, b := rep.Activity[i], rep.Activity[j]
			return a.Day < b.Day || (a.Day == b.Day && a.Kind < b.Kind)
		})
	}
	return rep, s.reportArchivedDeliveries(ctx, archive, &rep, since, held)
}

// graceAndOverage lists the licenses in grace and those with overage seats
// at now. Both are read as rows, not aggregates, and only when the stats
// of the same transaction count some: the per-license seat count is the
// report's costliest query, not to be run again for nothing.
func graceAndOverage(tx Tx, now time.Time, st Stats) ([]GraceLicense, []OverageLicense, error) {
	names := map[string]string{}
	name := func(id string) (string, error) {
		if n, ok := names[id]; ok {
			return n, nil
		}
		c, err := tx.Customer(id)
		names[id] = c.Name
		return c.Name, err
	}
	grace, over := []GraceLicense{}, []OverageLicense{}
	var lics []License
	if st.InGrace > 0 {
		var err error
		if lics, err = tx.Licenses(LicenseFilter{Status: StatusActive, ExpiresBefore: now}); err != nil {
			return nil, nil, err
		}
	}
	for _, l := range lics {
		if l.EffectiveStatus(now) != StatusGrace {
			continue
		}
		n, err := name(l.CustomerID)
		if err != nil {
			return nil, nil, err
		}
		grace = append(grace, GraceLicense{ExpiringLicense{refOf(l, n), l.ExpiresAt}, l.GraceEndsAt()})
	}
	seats := map[string]SeatCounts{}
	if st.Seats.Overage > 0 {
		var err error
		if seats, err = tx.SeatCounts(now); err != nil {
			return nil, nil, err
		}
	}
	for id, c := range seats {
		if c.Overage == 0 {
			continue
		}
		l, err := tx.License(id)
		if err != nil {
			return nil, nil, err
		}
		n, err := name(l.CustomerID)
		if err != nil {
			return nil, nil, err
		}
		over = append(over, OverageLicense{LicenseRef: refOf(l, n), Live: c.Live, Overage: c.Overage, MaxInstances: int(l.MaxInstances), OveragePercent: l.OveragePercent, SeatCap: l.SeatCap()})
	}
	sort.SliceStable(grace, func(i, j int) bool { return grace[i].GraceEndsAt.Before(grace[j].GraceEndsAt) })
	sort.Slice(over, func(i, j int) bool {
		a, b := over[i], over[j]
		return a.Overage > b.Overage || (a.Overage == b.Overage && a.LicenseID < b.LicenseID)
	})
	return grace, over, nil
}

// reportArchivedDeliveries adds the deliveries of the window that the
// archives hold (none of those held, which are counted already).
func (s *Service) reportArchivedDeliveries(ctx context.Context, archive Archive, rep *ReportData, since time.Time, held []Delivery) error {
	old, err := readArchived[Delivery](ctx, s, archive, ArchiveDeliveries, since)
	if err != nil || len(old) == 0 {
		return err
	}
	seen := map[int64]bool{}
	for _, d := range held {
		seen[d.ID] = true
	}
	counts := map[[2]string]int{}
	for _, d := range rep.Deliveries {
		counts[[2]string{d.Kind, d.Outcome}] = d.Count
	}
	for _, d := range old {
		if seen[d.ID] || d.At.Before(since) {
			continue
		}
		seen[d.ID] = true
		counts[[2]string{d.Kind, d.Outcome}]++
		if d.Outcome == OutcomeFailed {
			rep.Failures = append(rep.Failures, d)
		}
		rep.ArchivedDays = true
	}
	rep.Deliveries = rep.Deliveries[:0]
	for k, n := range counts {
		rep.Deliveries = append(rep.Deliveries, DeliveryCount{Kind: k[0], Outcome: k[1], Count: n})
	}
	sort.Slice(rep.Deliveries, func(i, j int) bool {
		a, b := rep.Deliveries[i], rep.Deliveries[j]
		return a.Kind < b.Kind || (a.Kind == b.Kind && a.Outcome < b.Outcome)
	})
	// The latest failures first, as the database lists them.
	sort.Slice(rep.Failures, func(i, j int) bool { return rep.Failures[i].ID > rep.Failures[j].ID })
	rep.Failures = rep.Failures[:min(len(rep.Failures), maxReportFailures)]
	return nil
}

// seatEventKinds are the events the activity chart counts.
var seatEventKinds = map[string]bool{EventActivationCreated: true, EventActivationRefreshed: true, EventActivationDeactivated: true}

func fullness(c CustomerSeats) float64 {
	if c.Max == 0 {
		return 0
	}
	return float64(c.Used) / float64(c.Max)
}
