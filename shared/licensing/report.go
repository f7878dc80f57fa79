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
	// ArchivedDays is true when part of the window came from archives.
	ArchivedDays bool `json:"archived_days"`
}

// ExpiringLicense is an active license expiring within the report's window.
type ExpiringLicense struct {
	LicenseID    string    `json:"license_id"`
	CustomerID   string    `json:"customer_id"`
	CustomerName string    `json:"customer_name"`
	Tier         string    `json:"tier"`
	ExpiresAt    time.Time `json:"expires_at"`
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

// Report gathers the operator report over the last (and next) days. Seat
// activity older than the database's oldest event comes from archive (when
// given).
func (s *Service) Report(ctx context.Context, archive Archive, days int) (ReportData, error) {
	if err := validateDays("days", days); err != nil {
		return ReportData{}, err
	}
	now := s.now()
	since := now.Add(-time.Duration(days) * 24 * time.Hour)
	rep := ReportData{GeneratedAt: now, Days: days}
	var oldest time.Time
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
		rep.Failures, err = tx.FailedDeliveries(since, maxReportFailures)
		return err
	})
	if err != nil {
		return rep, err
	}
	for _, c := range rep.Customers {
		rep.SeatsSold += c.Max
	}
	sort.SliceStable(rep.Customers, func(i, j int) bool { return fullness(rep.Customers[i]) > fullness(rep.Customers[j]) })
	// The part of the window before the database's history: from archives.
	if archive != nil && (oldest.IsZero() || oldest.After(since)) {
		old, err := readArchived[Event](ctx, s, archive, ArchiveEvents, since)
		if err != nil {
			return rep, err
		}
		counts := map[[2]string]int{}
		for _, e := range old {
			if (oldest.IsZero() || e.At.Before(oldest)) && seatEventKinds[e.Kind] {
				counts[[2]string{e.At.UTC().Format(time.DateOnly), e.Kind}]++
			}
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
	return rep, nil
}

// seatEventKinds are the events the activity chart counts.
var seatEventKinds = map[string]bool{EventActivationCreated: true, EventActivationRefreshed: true, EventActivationDeactivated: true}

func fullness(c CustomerSeats) float64 {
	if c.Max == 0 {
		return 0
	}
	return float64(c.Used) / float64(c.Max)
}
