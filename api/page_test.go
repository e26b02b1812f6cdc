package api

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
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
