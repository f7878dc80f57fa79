package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// At the default settings the database a cold start loads stays within
// twice the live state, whenever it is loaded: right after the daily
// maintain and right before it, when the day's history is all in the file.
// And nothing is lost: every seat event of the run is still read, from the
// archives and the database. A shorter run than the year's (20 days, 200
// instances); with the old default (90 days) the file holds all 20 days.
func TestDefaultsKeepTheDatabaseNearTheLiveState(t *testing.T) {
	const days, instances = 20, 200
	var out strings.Builder
	res, err := simulate(config{days: days, customers: 20, instances: instances, checks: 4,
		retentions: []int{licensing.DefaultRetentionDays}}, t.TempDir(), &out)
	defer res.close()
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	f := res.fleet(licensing.DefaultRetentionDays)
	if after, peak := res.ratio(f.size()), res.ratio(f.peak); after > 2 || peak > 2 {
		t.Errorf("at the defaults the database is %.2fx the live state (%.2f MB) after maintain and up to %.2fx before it, want at most 2x",
			after, mb(res.live), peak)
	}
	if f.peak < f.size() || res.live <= 0 {
		t.Fatalf("sizes make no sense: live %d, after %d, peak %d", res.live, f.size(), f.peak)
	}

	// No history lost: every activation and deactivation of the run.
	evs, err := f.svc.EventsWithArchive(context.Background(), f.store.Archive(), licensing.EventFilter{Since: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range evs {
		count[e.Kind]++
	}
	wantCreated, wantDeactivated := days*instances, (days-1)*instances*9/10
	if count[licensing.EventActivationCreated] != wantCreated || count[licensing.EventActivationDeactivated] != wantDeactivated {
		t.Errorf("archives and database hold %d activations and %d deactivations, want %d and %d",
			count[licensing.EventActivationCreated], count[licensing.EventActivationDeactivated], wantCreated, wantDeactivated)
	}
	if held := f.eventsHeld(t); licensing.DefaultRetentionDays == 0 && held != 0 {
		t.Errorf("%d events left in the database after the last maintain, want none at retention 0", held)
	}
}

// eventsHeld counts the events the database itself holds.
func (f *fleet) eventsHeld(t *testing.T) int {
	t.Helper()
	evs, err := f.svc.Events(context.Background(), licensing.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}
