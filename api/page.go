package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	sb "github.com/switchboard-voice/switchboard"
)

// Every list pages one way. A request asks ?limit=N (1 to sb.MaxPage,
// default defaultPageLimit) and ?after=<cursor>, the previous page's next;
// the answer is {"<name>": [...], "next": "<cursor>"}. next is the last
// item's id when the page is full, "" when it is not: a client asks until
// next is "" (the last page may be empty). The store reads the items after
// the cursor in its list's own order (calls newest first, people and keys
// oldest first).

const defaultPageLimit = 50

// parsePage reads ?after and ?limit, naming the parameter that is wrong.
func parsePage(q url.Values) (sb.Page, error) {
	p := sb.Page{Limit: defaultPageLimit}
	if v := q.Get("after"); v != "" {
		id, err := sb.ParseID(v)
		if err != nil {
			return p, sb.Errorf(sb.EINVALID, "after: %q is not an id: pass the previous page's next", v)
		}
		p.After = id
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > sb.MaxPage {
			return p, sb.Errorf(sb.EINVALID, "limit: %q must be a number from 1 to %d", v, sb.MaxPage)
		}
		p.Limit = n
	}
	return p, nil
}

// writePage answers one page of a list as {name: items, "next": cursor};
// id is an item's cursor.
func writePage[T any](s *Server, w http.ResponseWriter, name string, p sb.Page, items []T, id func(T) sb.ID) {
	if items == nil {
		items = []T{}
	}
	next := ""
	if len(items) > 0 && len(items) >= p.Limit {
		next = id(items[len(items)-1]).String()
	}
	s.writeJSON(w, http.StatusOK, map[string]any{name: items, "next": next})
}

// pagedList serves GET of a list that find reads a page of.
func pagedList[T any](s *Server, name string, find func(context.Context, sb.Page) ([]T, error), id func(T) sb.ID) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := parsePage(r.URL.Query())
		if err != nil {
			s.error(w, r, err)
			return
		}
		items, err := find(r.Context(), p)
		if err != nil {
			s.error(w, r, err)
			return
		}
		writePage(s, w, name, p, items, id)
	}
}
