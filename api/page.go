package api

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
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

// pagedAll serves GET of a short list that find reads whole (a tenant's
// trunks, queues, webhooks, routes): it is paged as every list is, the
// cursor being an item's ID (see pageOf).
func pagedAll[T any](s *Server, name string, find func(context.Context) ([]T, error), id func(T) sb.ID, byID bool) http.HandlerFunc {
	return pagedList(s, name, func(ctx context.Context, p sb.Page) ([]T, error) {
		items, err := find(ctx)
		if err != nil {
			return nil, err
		}
		return pageOf(items, p, id, byID)
	}, id)
}

// pageOf is one page of a list read whole. byID pages it in ID order
// (creation order), robust to an item deleted between pages; without, in
// the list's own order (routes first choice first, grants newest first),
// an after that is no longer there is said as 400: start over.
func pageOf[T any](items []T, p sb.Page, id func(T) sb.ID, byID bool) ([]T, error) {
	if byID {
		slices.SortFunc(items, func(a, b T) int { return cmpID(id(a), id(b)) })
	}
	start := 0
	if p.After != (sb.ID{}) {
		i := slices.IndexFunc(items, func(it T) bool {
			if byID {
				return cmpID(id(it), p.After) > 0
			}
			return id(it) == p.After
		})
		switch {
		case byID && i < 0:
			start = len(items)
		case i < 0:
			return nil, sb.Errorf(sb.EINVALID, "after: that item is gone; start from the first page")
		case byID:
			start = i
		default:
			start = i + 1
		}
	}
	return items[start:min(len(items), start+p.Limit)], nil
}

// cmpID orders IDs as their bytes do: UUIDv7s by creation time.
func cmpID(a, b sb.ID) int { return bytes.Compare(a[:], b[:]) }
