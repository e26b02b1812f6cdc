package api

import (
	"cmp"
	"encoding/csv"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// wantsCSV reports whether GET /v1/calls asks for the search as CSV:
// ?format=csv, or an Accept header that names text/csv.
func wantsCSV(r *http.Request) bool {
	if r.URL.Query().Get("format") == "csv" {
		return true
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if t, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && t == "text/csv" {
			return true
		}
	}
	return false
}

// filterNames are the names of the filters f applies, as the query names
// them (parseCallFilter's keys).
func filterNames(f sb.CallFilter) []string {
	var names []string
	for _, c := range []struct {
		name string
		set  bool
	}{{"external_ref", f.ExternalRef != ""}, {"failed", f.Failed}, {"label", f.Label != ""}, {"number", f.Number != ""},
		{"operator_id", f.OperatorID != nil}, {"since", f.Since != nil}, {"status", f.Status != ""}, {"tag", f.Tag != ""},
		{"until", f.Until != nil}} {
		if c.set {
			names = append(names, c.name)
		}
	}
	return names
}

// csvHeader names the export's columns.
var csvHeader = []string{"call_id", "started_at", "direction", "from", "to", "status", "hangup_by", "answered_at", "ended_at",
	"talk_seconds", "operator", "trunk", "external_ref", "labels", "tags", "sip_code", "reason", "failure_leg", "failure_stage", "codec"}

// exportCalls answers GET /v1/calls as CSV: every call the search
// matches (its filters, not its page: all pages, read 500 at a time and
// streamed), numbers masked as the list masks them. Operators export their
// own calls, as they list them; support engineers, who diagnose calls one
// at a time, get 403. The export is audited (calls.export, with the
// filters' names, never their values) before the first row is sent.
func (s *Server) exportCalls(w http.ResponseWriter, r *http.Request) {
	a := sb.ActorFromContext(r.Context())
	if a.Role == sb.RoleSupport {
		s.error(w, r, sb.Errorf(sb.EFORBIDDEN, "support engineers cannot export calls"))
		return
	}
	q := r.URL.Query()
	for _, paging := range []string{"after", "limit", "format"} {
		q.Del(paging)
	}
	f, err := s.callFilter(r, q)
	if err != nil {
		s.error(w, r, err)
		return
	}
	f.Limit = sb.MaxPage
	page, err := s.deps.Calls.FindCalls(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	// Only the names of the filters the search applies: any other key of
	// the query is the client's own text, which could be a number.
	e := actorEntry(a, "calls.export", "calls", sb.ID{})
	e.ResourceID, e.Detail = "", truncate("filters: "+cmp.Or(strings.Join(filterNames(f), ", "), "none"), 200)
	if err := s.audit(r, e); err != nil {
		s.error(w, r, err)
		return
	}
	mask := s.masksCallers(r.Context(), a.TenantID, a.Role)
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", `attachment; filename="calls-`+s.conf.Now().UTC().Format("20060102-150405")+`.csv"`)
	out := csv.NewWriter(w)
	write := func(row []string) bool {
		for i, cell := range row {
			row[i] = csvSafe(cell)
		}
		return out.Write(row) == nil
	}
	if !write(slices.Clone(csvHeader)) {
		return
	}
	for {
		for _, c := range page {
			if mask {
				maskCall(c)
			}
			if !write(csvRow(c)) {
				return // the client went away
			}
		}
		out.Flush()
		if len(page) < f.Limit {
			return
		}
		f.After = &page[len(page)-1].ID
		if page, err = s.deps.Calls.FindCalls(r.Context(), f); err != nil {
			// The rows sent cannot be taken back: the connection is cut so
			// the download fails rather than looking whole.
			s.log.Error("exporting calls", "err", err)
			fail := actorEntry(a, "calls.export", "calls", sb.ID{})
			fail.ResourceID, fail.Outcome, fail.Reason = "", "failed", truncate(sb.ErrorMessage(err), 200)
			if aerr := s.audit(r, fail); aerr != nil {
				s.log.Error("auditing a failed export", "err", aerr)
			}
			panic(http.ErrAbortHandler) // net/http's way to abort a response; not a crash
		}
	}
}

// csvRow is one call's row, in csvHeader's order.
func csvRow(c *sb.Call) []string {
	at := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	code := ""
	if c.SIPCode != 0 {
		code = strconv.Itoa(c.SIPCode)
	}
	trunk := c.TrunkName
	if trunk == "" && c.TrunkID != nil {
		trunk = "deleted trunk"
	}
	operator := c.OperatorName
	if operator == "" && c.OperatorID != nil {
		operator = "deleted person"
	}
	return []string{c.ID.String(), c.CreatedAt.UTC().Format(time.RFC3339), string(c.Direction), c.From, c.To, string(c.Status),
		string(c.HangupBy), at(c.AnsweredAt), at(c.EndedAt), strconv.FormatInt(c.DurationMS/1000, 10), operator, trunk,
		c.ExternalRef, strings.Join(c.Labels, ";"), strings.Join(c.Tags, ";"), code, c.Reason, c.FailureLeg, c.FailureStage, c.Codec}
}

// csvSafe keeps a cell from being read as a formula by a spreadsheet
// (OWASP's CSV injection): one that begins with = + - @, a tab or a
// carriage return is prefixed with a quote. A caller's "+4930…" becomes
// "'+4930…", which spreadsheets show as the number's text.
func csvSafe(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}
