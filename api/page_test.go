package api

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

func TestParsePage(t *testing.T) {
	id := sb.NewID()
	for _, c := range []struct {
		query   string
		want    sb.Page
		invalid string // the parameter named, when refused
	}{
		{"", sb.Page{Limit: defaultPageLimit}, ""},
		{"limit=1", sb.Page{Limit: 1}, ""},
		{"limit=500&after=" + id.String(), sb.Page{After: id, Limit: 500}, ""},
		{"limit=0", sb.Page{}, "limit"},
		{"limit=501", sb.Page{}, "limit"},
		{"limit=ten", sb.Page{}, "limit"},
		{"after=x", sb.Page{}, "after"},
	} {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parsePage(q)
		switch {
		case c.invalid != "":
			if sb.ErrorCode(err) != sb.EINVALID || !strings.HasPrefix(sb.ErrorMessage(err), c.invalid+":") {
				t.Errorf("?%s: %v, want invalid naming %s", c.query, err, c.invalid)
			}
		case err != nil || got != c.want:
			t.Errorf("?%s: %+v %v, want %+v", c.query, got, err, c.want)
		}
	}
}

// A full page names its last item as next; a short one ends the list.
func TestWritePageNext(t *testing.T) {
	s := NewServer(Config{}, Deps{})
	ids := []sb.ID{sb.NewID(), sb.NewID()}
	for _, c := range []struct {
		limit int
		items []sb.ID
		next  string
	}{
		{2, ids, ids[1].String()},
		{3, ids, ""},
		{2, nil, ""},
	} {
		w := httptest.NewRecorder()
		writePage(s, w, "items", sb.Page{Limit: c.limit}, c.items, func(id sb.ID) sb.ID { return id })
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if body["next"] != c.next || body["items"] == nil {
			t.Errorf("limit %d, %d items: %v, want next %q", c.limit, len(c.items), body, c.next)
		}
	}
}

// TestPageOf: a list read whole pages by ID (after an ID that is gone,
// the ones created later), or in its own order (after an ID that is gone,
// 400: start over).
func TestPageOf(t *testing.T) {
	ids := []sb.ID{sb.NewID(), sb.NewID(), sb.NewID(), sb.NewID()}
	id := func(x sb.ID) sb.ID { return x }
	newestFirst := []sb.ID{ids[3], ids[2], ids[1], ids[0]}

	got, err := pageOf(slices.Clone(newestFirst), sb.Page{Limit: 2}, id, true)
	if err != nil || !slices.Equal(got, ids[:2]) {
		t.Errorf("by ID, first page: %v %v, want the two oldest", got, err)
	}
	gone := sb.NewID() // made after ids[3]: nothing comes after it
	if got, err := pageOf(slices.Clone(newestFirst), sb.Page{After: gone, Limit: 2}, id, true); err != nil || len(got) != 0 {
		t.Errorf("by ID after the newest: %v %v, want an empty last page", got, err)
	}
	got, err = pageOf(slices.Clone(newestFirst), sb.Page{After: ids[2], Limit: 5}, id, false)
	if err != nil || !slices.Equal(got, []sb.ID{ids[1], ids[0]}) {
		t.Errorf("own order after the second: %v %v", got, err)
	}
	if _, err := pageOf(slices.Clone(newestFirst), sb.Page{After: gone, Limit: 2}, id, false); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("own order after an item that is gone: %v, want EINVALID", err)
	}
}
