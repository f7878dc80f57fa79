package s3store_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// Past a thousand deltas since the snapshot, a cold start fetches the 16
// deltas after the merged deltas' reach before the listing of them says
// they exist (beyond.go), at the same time as that listing. A writer that
// commits the next delta after its speculative GET was answered 404 and
// before the listing was made leaves the listing naming a delta the GET
// did not find: that is a delta written meanwhile, not one deleted under
// the reader, and the cold start must not call it a gap (DB_INVALID).
func TestColdStartPastAPageWithADeltaWrittenAsItIsFetched(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	snap, _ := snapshotThenDeltas(t, srv, 0, 1100)
	writer := openOpt(t, srv, s3store.Options{Snapshots: s3store.SnapshotOnRequest})
	if err := addCustomer(writer, "WARM"); err != nil { // a warm writer
		t.Fatal(err)
	}
	var last uint64
	for _, k := range listAll(t, srv, key+".log/") {
		if seq, _ := strconv.ParseUint(k[len(k)-20:], 10, 64); seq > last {
			last = seq
		}
	}
	next := deltaName(last + 1)

	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	var once sync.Once
	written := make(chan struct{})
	var writeErr error
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method == http.MethodGet && q.Get("list-type") == "2" && strings.HasSuffix(q.Get("prefix"), ".log/") {
			if after := q.Get("start-after"); len(after) >= 20 {
				if seq, _ := strconv.ParseUint(after[len(after)-20:], 10, 64); seq > snap {
					// The listing of the tail: made once the writer committed.
					select {
					case <-written:
					case <-time.After(5 * time.Second):
					}
				}
			}
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		if r.Method == http.MethodGet && rec.Code == http.StatusNotFound && strings.HasSuffix(r.URL.Path, "/"+next) {
			once.Do(func() { writeErr = addCustomer(writer, "LATE"); close(written) })
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(proxy.Close)
	reader := open(t, &s3test.Server{URL: proxy.URL, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	err = viewErr(reader)
	select {
	case <-written:
	default:
		t.Fatal("the cold start fetched no delta past the log's end: the race was not set up")
	}
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	if err != nil {
		t.Fatalf("a cold start as the writer committed delta %d: %v", last+1, err)
	}
	// The listing, made after the commit, names it: the reader ends there.
	if ids := customers(t, reader); !slices.Contains(ids, "LATE") || !slices.Contains(ids, "WARM") {
		t.Fatalf("the reader did not reach delta %d: %d customers", last+1, len(ids))
	}
}
