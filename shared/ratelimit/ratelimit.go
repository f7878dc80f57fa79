// Package ratelimit keeps a token bucket per key (a source address, a
// license key's digest) in bounded memory: however many distinct keys
// call, at most MaxKeys buckets are kept, the least recently used dropped
// first.
package ratelimit

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter limits calls per key.
type Limiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	recent  *list.List               // most recently used at the front
}

type bucket struct {
	key string
	lim *rate.Limiter
}

// New allows perSecond calls per key on average, bursts of burst, keeping at
// most maxKeys buckets. perSecond <= 0 disables limiting (nil Limiter).
func New(perSecond float64, burst, maxKeys int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	return &Limiter{limit: rate.Limit(perSecond), burst: max(burst, 1), maxKeys: max(maxKeys, 1),
		buckets: map[string]*list.Element{}, recent: list.New()}
}

// Allow takes a token from key's bucket at now. When there is none it
// returns false and how long until there will be one.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.buckets[key]
	if ok {
		l.recent.MoveToFront(el)
	} else {
		el = l.recent.PushFront(&bucket{key: key, lim: rate.NewLimiter(l.limit, l.burst)})
		l.buckets[key] = el
		for l.recent.Len() > l.maxKeys {
			oldest := l.recent.Back()
			l.recent.Remove(oldest)
			delete(l.buckets, oldest.Value.(*bucket).key)
		}
	}
	r := el.Value.(*bucket).lim.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// Keys is how many buckets are kept.
func (l *Limiter) Keys() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
