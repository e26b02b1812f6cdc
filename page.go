package switchboard

// Page asks for one page of a list: the items after the one with ID After
// (zero: from the start), at most Limit of them. Lists are ordered by ID,
// so by creation time; a store reads "after" in its list's own order.
type Page struct {
	After ID
	Limit int
}

// MaxPage is the most items a page may hold.
const MaxPage = 500
