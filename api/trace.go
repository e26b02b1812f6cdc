package api

import (
	"net/http"

	sb "github.com/switchboard-voice/switchboard"
)

// trace reads the call's trace for the handlers below.
func (s *Server) trace(w http.ResponseWriter, r *http.Request) (*sb.CallTrace, bool) {
	id, ok := s.callID(w, r)
	if !ok {
		return nil, false
	}
	if s.deps.Traces == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "call not found"))
		return nil, false
	}
	t, err := s.deps.Traces.FindCallTrace(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return nil, false
	}
	return t, true
}

// getCallTrace is GET /v1/calls/{id}/trace: the call's SIP messages as
// they crossed the wire (redacted by the tenant's trace policy) and its
// timeline, for the ladder diagram.
func (s *Server) getCallTrace(w http.ResponseWriter, r *http.Request) {
	t, ok := s.trace(w, r)
	if !ok {
		return
	}
	events, err := s.deps.Calls.FindCallEvents(r.Context(), t.CallID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"sip": t.SIP, "events": events})
}

// getCallQuality is GET /v1/calls/{id}/quality: each direction's summary
// and MOS, the quality tags, and the samples over the call.
func (s *Server) getCallQuality(w http.ResponseWriter, r *http.Request) {
	t, ok := s.trace(w, r)
	if !ok {
		return
	}
	c, err := s.deps.Calls.FindCallByID(r.Context(), t.CallID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	tags := c.Tags
	if tags == nil {
		tags = []string{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"from_caller": c.FromCaller, "to_caller": c.ToCaller, "tags": tags,
		"samples": t.Quality})
}
