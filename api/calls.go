package api

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// parseCallFilter reads GET /v1/calls's query, naming the parameter that
// is wrong.
func parseCallFilter(q url.Values) (sb.CallFilter, error) {
	var f sb.CallFilter
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, sb.Errorf(sb.EINVALID, "%s: %q is not an RFC 3339 time such as 2026-11-24T09:00:00Z", p.name, v)
			}
			*p.dst = &t
		}
	}
	if v := q.Get("status"); v != "" {
		switch st := sb.CallStatus(v); st {
		case sb.CallRinging, sb.CallAnswered, sb.CallCompleted, sb.CallNoAnswer, sb.CallBusy, sb.CallCanceled, sb.CallFailed, sb.CallRejected:
			f.Status = st
		default:
			return f, sb.Errorf(sb.EINVALID, "status: %q is not a call status", v)
		}
	}
	f.Number = q.Get("number")
	f.Tag = q.Get("tag")
	f.ExternalRef = q.Get("external_ref")
	f.Label = q.Get("label")
	switch q.Get("failed") {
	case "", "false":
	case "true":
		f.Failed = true
	default:
		return f, sb.Errorf(sb.EINVALID, "failed: %q must be true or false", q.Get("failed"))
	}
	if v := q.Get("operator_id"); v != "" {
		id, err := sb.ParseID(v)
		if err != nil {
			return f, sb.Errorf(sb.EINVALID, "operator_id: %q is not an id", v)
		}
		f.OperatorID = &id
	}
	p, err := parsePage(q)
	if err != nil {
		return f, err
	}
	if p.After != (sb.ID{}) {
		f.After = &p.After
	}
	f.Limit = p.Limit
	return f, nil
}

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) {
	if wantsCSV(r) {
		s.exportCalls(w, r)
		return
	}
	f, err := s.callFilter(r, r.URL.Query())
	if err != nil {
		s.error(w, r, err)
		return
	}
	calls, err := s.deps.Calls.FindCalls(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if a := sb.ActorFromContext(r.Context()); s.masksCallers(r.Context(), a.TenantID, a.Role) {
		for _, c := range calls {
			maskCall(c)
		}
	}
	writePage(s, w, "calls", sb.Page{Limit: f.Limit}, calls, func(c *sb.Call) sb.ID { return c.ID })
}

func (s *Server) callID(w http.ResponseWriter, r *http.Request) (sb.ID, bool) {
	id, err := sb.ParseID(chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "call not found"))
		return sb.ID{}, false
	}
	return id, true
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request) {
	id, ok := s.callID(w, r)
	if !ok {
		return
	}
	c, err := s.deps.Calls.FindCallByID(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if a := sb.ActorFromContext(r.Context()); s.masksCallers(r.Context(), a.TenantID, a.Role) {
		maskCall(c)
	}
	s.writeJSON(w, http.StatusOK, c)
}

// callFilter is the actor's search of calls in q. One who is shown
// numbers masked may not search by a number: an exact match would confirm
// a guess of the digits the mask hides.
func (s *Server) callFilter(r *http.Request, q url.Values) (sb.CallFilter, error) {
	f, err := parseCallFilter(q)
	if err != nil {
		return f, err
	}
	if a := sb.ActorFromContext(r.Context()); f.Number != "" && s.masksCallers(r.Context(), a.TenantID, a.Role) {
		return f, sb.Errorf(sb.EFORBIDDEN, "numbers are shown to you masked, so calls cannot be searched by number")
	}
	return f, nil
}

// masksCallers reports whether the tenant shows its operators only the
// last digits of callers' numbers, and with them nothing else that names a
// caller as well (a browser caller's address, a WhatsApp call ID's
// numbers): the one rule for what a viewer sees of callers. Staff see them
// whole; a tenant that cannot be read is masked, the safe side.
func (s *Server) masksCallers(ctx context.Context, tenantID sb.ID, role sb.Role) bool {
	if role != sb.RoleOperator || s.deps.Tenants == nil {
		return false
	}
	t, err := s.deps.Tenants.FindTenantByID(ctx, tenantID)
	if err != nil {
		s.log.Warn("reading the tenant's minimisation setting; masking", "err", err)
		return true
	}
	return t.Privacy.MaskOperatorNumbers
}

// maskCall hides all but the last digits of a call's numbers, the
// numbers a WhatsApp call ID holds, a browser caller's address, and what
// of its reason could quote a number.
func maskCall(c *sb.Call) {
	c.From, c.To = sb.MaskNumber(c.From), sb.MaskNumber(c.To)
	c.ExternalRef = sb.MaskExternalRef(c.ExternalRef)
	c.Source = sb.MaskSource(c.Source)
	c.Reason = sb.MaskReason(c.Reason)
}

// seesOperatorsAddresses reports whether role may read where an operator's
// browser is on the network: the candidate pair of their WebRTC link on a
// call's timeline. Those who diagnose calls do (supervisors, support
// engineers, admins); an operator does not, not even their own, since a
// call's timeline passes with the call to whoever it is transferred to.
func seesOperatorsAddresses(role sb.Role) bool { return role != sb.RoleOperator }

// maskTimeline masks a call's events for the actor who reads them: what
// names the call's parties as masksCallers says, and operators' addresses
// as seesOperatorsAddresses says.
func (s *Server) maskTimeline(ctx context.Context, a *sb.Actor, events []*sb.CallEvent) {
	callers, operators := s.masksCallers(ctx, a.TenantID, a.Role), !seesOperatorsAddresses(a.Role)
	for _, e := range events {
		if callers {
			e.MaskCallers()
		}
		if operators {
			e.MaskOperatorAddress()
		}
	}
}

// maskCaller is maskCall for the caller an operator is shown, with their
// earlier calls.
func maskCaller(info *sb.CallerInfo) {
	info.From, info.To = sb.MaskNumber(info.From), sb.MaskNumber(info.To)
	info.ExternalRef = sb.MaskExternalRef(info.ExternalRef)
	for i := range info.Earlier {
		info.Earlier[i].ExternalRef = sb.MaskExternalRef(info.Earlier[i].ExternalRef)
	}
}

func (s *Server) getCallEvents(w http.ResponseWriter, r *http.Request) {
	id, ok := s.callID(w, r)
	if !ok {
		return
	}
	events, err := s.deps.Calls.FindCallEvents(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if events == nil {
		events = []*sb.CallEvent{}
	}
	s.maskTimeline(r.Context(), sb.ActorFromContext(r.Context()), events)
	var mentioned []sb.ID
	for _, e := range events {
		mentioned = idsIn(map[string]any(e.Detail), mentioned)
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"events": events, "names": s.names(r.Context(), mentioned)})
}

// getCallRecording is the recording's record: whether it exists, its
// size, codec, consent and state. Never the audio: that needs the audited
// diagnostic access of support engineers.
func (s *Server) getCallRecording(w http.ResponseWriter, r *http.Request) {
	id, ok := s.callID(w, r)
	if !ok {
		return
	}
	if s.deps.Recordings == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "recording not found"))
		return
	}
	rec, err := s.deps.Recordings.FindRecordingByCallID(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, rec)
}

// postCallConsent states or withdraws a call's recording consent while the
// call is in progress: {"given": true|false}. Given, the call is recorded
// if its tenant's policy allows; withdrawn, recording stops and what was
// recorded is destroyed.
func (s *Server) postCallConsent(w http.ResponseWriter, r *http.Request) {
	id, ok := s.callID(w, r)
	if !ok {
		return
	}
	a := sb.ActorFromContext(r.Context())
	if a.Role == sb.RoleSupport {
		s.error(w, r, sb.Errorf(sb.EFORBIDDEN, "support engineers cannot change a call's consent"))
		return
	}
	var in struct {
		Given *bool `json:"given"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&in); err != nil || in.Given == nil {
		s.error(w, r, sb.Errorf(sb.EINVALID, `the body must be {"given": true} or {"given": false}`))
		return
	}
	// The call must be one the actor may see: another tenant's is missing.
	if _, err := s.deps.Calls.FindCallByID(r.Context(), id); err != nil {
		s.error(w, r, err)
		return
	}
	if s.deps.Consents == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "consent cannot be changed here"))
		return
	}
	c := sb.Consent{Given: *in.Given, Mechanism: sb.ConsentAPI, At: time.Now().UTC(), By: actorBy(a)}
	action := "consent.give"
	if !c.Given {
		action = "consent.withdraw"
	}
	if err := s.auditRecordingChange(r, a, action, !c.Given, id, func() error { return s.deps.Consents.SetConsent(a.TenantID, id, c) }); err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusAccepted, c)
}

// actorBy names the actor on a call's timeline: "user <id>" or "api key
// <id>", which the console names.
func actorBy(a *sb.Actor) string {
	if a.UserID != (sb.ID{}) {
		return "user " + a.UserID.String()
	}
	return "api key " + a.APIKeyID.String()
}

// pauseAction is the audit action of pausing or resuming a recording.
func pauseAction(paused bool) string {
	if paused {
		return "recording.pause"
	}
	return "recording.resume"
}

// pauseRecording pauses or resumes a call's recording, for example while a
// card number is read out. The gap is marked in the recording. It changes
// what is kept of the caller's voice, so it is audited as consent is: a
// resume first, a pause after (taken even when the audit log cannot be
// written).
func (s *Server) pauseRecording(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.callID(w, r)
		if !ok {
			return
		}
		if a := sb.ActorFromContext(r.Context()); a.Role == sb.RoleSupport {
			s.error(w, r, sb.Errorf(sb.EFORBIDDEN, "support engineers cannot pause recordings"))
			return
		}
		if _, err := s.deps.Calls.FindCallByID(r.Context(), id); err != nil {
			s.error(w, r, err)
			return
		}
		if s.deps.Consents == nil {
			s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "recordings cannot be paused here"))
			return
		}
		a := sb.ActorFromContext(r.Context())
		if err := s.auditRecordingChange(r, a, pauseAction(paused), paused, id, func() error {
			return s.deps.Consents.PauseRecording(a.TenantID, id, paused, actorBy(a))
		}); err != nil {
			s.error(w, r, err)
			return
		}
		s.writeJSON(w, http.StatusAccepted, map[string]bool{"paused": paused})
	}
}

// listAudit is GET /v1/audit: the tenant's audit log, newest first, for
// its admins (the service checks the role). Query: action, since, until
// (RFC 3339), before (a seq, to continue), limit.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	if s.deps.AuditReader == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "no audit log here"))
		return
	}
	q := r.URL.Query()
	f := sb.AuditFilter{Action: q.Get("action")}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.error(w, r, sb.Errorf(sb.EINVALID, "%s: %q is not an RFC 3339 time", p.name, v))
				return
			}
			*p.dst = &t
		}
	}
	for _, p := range []struct {
		name string
		dst  *int64
		max  int64
	}{{"before", &f.Before, 1 << 62}, {"limit", nil, 1000}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > p.max {
			s.error(w, r, sb.Errorf(sb.EINVALID, "%s: %q must be a number from 1 to %d", p.name, v, p.max))
			return
		}
		if p.dst != nil {
			*p.dst = n
		} else {
			f.Limit = int(n)
		}
	}
	entries, err := s.deps.AuditReader.FindAuditEntries(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	// Entries come newest first, by sequence number: the next page is the
	// entries before the last one's.
	next := ""
	if limit := cmp.Or(f.Limit, 100); len(entries) > 0 && len(entries) >= limit { // the store's default
		next = strconv.FormatInt(entries[len(entries)-1].Seq, 10)
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"entries": s.namedAudit(r.Context(), entries), "next": next})
}
