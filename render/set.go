package render

// set is a set that keeps the order its elements were added in. A run of
// events touches a few entities of each kind (a live flush: one user, one
// product), so the elements are a slice searched in turn, with an index
// made only once the set outgrows setSpill (a rebuild's or a bulk
// import's run). Touched kept a map per kind before: their assignments,
// iterations and clears were a fifth of a bench command's staging and
// rendering.
type set[K comparable] struct {
	list []K
	pos  map[K]int // list index by element; nil until len(list) > setSpill
}

// setSpill is the size past which a set indexes its elements.
const setSpill = 16

// maxKeptSet bounds the slice a reset set keeps for reuse.
const maxKeptSet = 1024

// find returns k's index in s.list, or -1.
func (s *set[K]) find(k K) int {
	if s.pos != nil {
		if i, ok := s.pos[k]; ok {
			return i
		}
		return -1
	}
	for i, x := range s.list {
		if x == k {
			return i
		}
	}
	return -1
}

func (s *set[K]) has(k K) bool { return s.find(k) >= 0 }

// add adds k, and reports whether it was not in s.
func (s *set[K]) add(k K) bool {
	if s.find(k) >= 0 {
		return false
	}
	s.list = append(s.list, k)
	switch {
	case s.pos != nil:
		s.pos[k] = len(s.list) - 1
	case len(s.list) > setSpill:
		s.pos = make(map[K]int, 2*len(s.list))
		for i, x := range s.list {
			s.pos[x] = i
		}
	}
	return true
}

func (s *set[K]) len() int { return len(s.list) }

// reset empties s, keeping its slice unless it grew large.
func (s *set[K]) reset() {
	clear(s.list)
	s.list = s.list[:0]
	if cap(s.list) > maxKeptSet {
		s.list = nil
	}
	s.pos = nil
}
