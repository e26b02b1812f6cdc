package api

import (
	"bytes"
	"math"
	"net/http"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/diag"
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
		"samples": scoredSamples(t.Quality, c.Codec)})
}

// sampleView is a quality sample with the MOS of the interval since the
// series' previous sample.
type sampleView struct {
	sb.QualitySample
	MOS float64 `json:"mos,omitempty"`
}

func scoredSamples(samples []sb.QualitySample, codec string) []sampleView {
	out := make([]sampleView, len(samples))
	last := map[string]sb.QualitySample{}
	for i, q := range samples {
		out[i].QualitySample = q
		key := q.Leg + "/" + q.Source
		if prev, ok := last[key]; ok {
			got, lost := float64(q.Packets)-float64(prev.Packets), float64(q.Lost-prev.Lost)
			if got+max(lost, 0) > 0 {
				_, mos := diag.MOS(diag.Quality{Loss: max(lost, 0) / (got + max(lost, 0)), JitterMS: q.JitterMS, DelayMS: q.RTTMS / 2, Codec: codec})
				out[i].MOS = math.Round(mos*100) / 100
			}
		}
		last[key] = q
	}
	return out
}

// getCallPcap is GET /v1/calls/{id}/pcap: the call's signalling as a pcap
// file, for Wireshark.
func (s *Server) getCallPcap(w http.ResponseWriter, r *http.Request) {
	t, ok := s.trace(w, r)
	if !ok {
		return
	}
	var b bytes.Buffer
	if err := diag.WritePcap(&b, t.SIP); err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
	w.Header().Set("Content-Disposition", `attachment; filename="call-`+t.CallID.String()+`.pcap"`)
	w.Header().Set("Cache-Control", "no-store")
	if _, err := w.Write(b.Bytes()); err != nil {
		s.log.Debug("writing a pcap", "err", err)
	}
}

// enabled reads {"enabled": true|false}.
func enabled(r *http.Request) (bool, error) {
	var in struct {
		Enabled *bool `json:"enabled"`
	}
	if err := decodeJSON(r, &in); err != nil || in.Enabled == nil {
		return false, sb.Errorf(sb.EINVALID, `the body must be {"enabled": true} or {"enabled": false}`)
	}
	return *in.Enabled, nil
}

// callSIPLogging switches logging of a call's SIP messages, while it is in
// progress, for those who may read its trace. Audited.
func (s *Server) callSIPLogging(w http.ResponseWriter, r *http.Request) {
	on, err := enabled(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	t, ok := s.trace(w, r) // the role check: the trace's readers
	if !ok {
		return
	}
	c, err := s.deps.Calls.FindCallByID(r.Context(), t.CallID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if s.deps.SIPLogging == nil || c.Status.Ended() {
		s.error(w, r, sb.Errorf(sb.ECONFLICT, "the call is not in progress here"))
		return
	}
	err = s.auditFirst(r, sb.ActorFromContext(r.Context()), "call.sip_logging."+onOff(on), "call", c.ID, func() error {
		if !s.deps.SIPLogging.SetCallLogging(r.Context(), c.TenantID, c.SIPCallID, on) {
			return sb.Errorf(sb.ECONFLICT, "the call is not in progress here")
		}
		return nil
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]bool{"enabled": on})
}

// trunkSIPLogging switches logging of the SIP messages of a trunk's new
// calls, for the tenant's admins. Audited.
func (s *Server) trunkSIPLogging(w http.ResponseWriter, r *http.Request) {
	on, err := enabled(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	id, err := sb.ParseID(chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "trunk not found"))
		return
	}
	trunks, err := s.findTrunks(r.Context()) // the role check: admins see trunks
	if err != nil {
		s.error(w, r, err)
		return
	}
	found := false
	for _, t := range trunks {
		found = found || t.ID == id
	}
	if !found || s.deps.SIPLogging == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "trunk not found"))
		return
	}
	if err := s.auditActor(r, sb.ActorFromContext(r.Context()), "trunk.sip_logging."+onOff(on), "trunk", id); err != nil {
		s.error(w, r, err)
		return
	}
	s.deps.SIPLogging.SetTrunkLogging(id, on)
	s.writeJSON(w, http.StatusOK, map[string]bool{"enabled": on})
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
