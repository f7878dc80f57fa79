package report

import "testing"

// The value axis is four round steps: 1, 2 or 5 times a power of ten.
func TestAxisStepsAreRound(t *testing.T) {
	round := func(step int) bool {
		for step >= 10 && step%10 == 0 {
			step /= 10
		}
		return step == 1 || step == 2 || step == 5
	}
	for n := 0; n <= 100000; n += 1 + n/7 {
		top := niceCeil(n)
		if top < n || top%4 != 0 || !round(top/4) {
			t.Fatalf("niceCeil(%d) = %d: ticks every %d", n, top, top/4)
		}
		if n > 4 && top > 10*n/2+4 {
			t.Fatalf("niceCeil(%d) = %d: too much headroom", n, top)
		}
	}
	if got := niceCeil(50); got != 80 {
		t.Fatalf("niceCeil(50) = %d, want 80 (ticks 0/20/40/60/80)", got)
	}
}
