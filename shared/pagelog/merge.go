package pagelog

import (
	"fmt"
	"sort"
)

// Merger merges consecutive deltas (plain or merged) into one delta from
// the state before the first to the state after the last: the pages they
// changed, each with its content after the last (a later delta's page
// wins), and the database's size after the last. A reader holding the
// state before the first applies it as it would apply the deltas one by
// one (Apply); one holding any state in between applies it with
// ApplyOver. It holds each page once, whatever the number of deltas.
type Merger struct {
	out   Delta
	pages map[uint32][]byte
	n     int
}

// Add merges d, the delta after the ones added so far.
func (m *Merger) Add(d Delta) error {
	first := d.Seq
	if d.First != 0 {
		first = d.First
	}
	if m.n == 0 {
		m.out = Delta{First: first, Pre: d.Pre, PageSize: d.PageSize}
		m.pages = map[uint32][]byte{}
	} else {
		switch {
		case first != m.out.Seq+1:
			return corrupt("delta %d does not follow delta %d", first, m.out.Seq)
		case d.Pre != m.out.Post:
			return corrupt("delta %d applies to another state than the one delta %d left", first, m.out.Seq)
		case d.PageSize != m.out.PageSize:
			return corrupt("delta %d has %d-byte pages, the deltas before it %d", first, d.PageSize, m.out.PageSize)
		}
	}
	for _, p := range d.Changed {
		m.pages[p.No] = p.Data
	}
	// Pages cut off by this delta are gone: a later delta that grows the
	// file again supplies them anew.
	for no := range m.pages {
		if no > d.Pages {
			delete(m.pages, no)
		}
	}
	m.out.Seq, m.out.Post, m.out.Pages, m.out.Time = d.Seq, d.Post, d.Pages, d.Time
	m.n++
	return nil
}

// Delta is the merged delta of everything added, its pages in order.
func (m *Merger) Delta() (Delta, error) {
	if m.n == 0 {
		return Delta{}, fmt.Errorf("nothing to merge")
	}
	d := m.out
	d.Changed = make([]Page, 0, len(m.pages))
	for no, data := range m.pages {
		d.Changed = append(d.Changed, Page{No: no, Data: data})
	}
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].No < d.Changed[j].No })
	d.Count = len(d.Changed)
	return d, nil
}
