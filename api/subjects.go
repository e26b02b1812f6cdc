package api

import (
	"net/http"

	sb "github.com/switchboard-voice/switchboard"
)

// A person's data on request, for the tenant's admins: each request names
// the person by number or external reference and says why.

type subjectRequest struct {
	Number      string `json:"number"`
	ExternalRef string `json:"external_ref"`
	Reason      string `json:"reason"`
}

func (s *Server) subjectRequest(w http.ResponseWriter, r *http.Request) (subjectRequest, bool) {
	var in subjectRequest
	if s.deps.Subjects == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "requests about a person's data are not available here"))
		return in, false
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return in, false
	}
	return in, true
}

// exportSubject is POST /v1/subjects/export: everything held about the
// person, as one JSON document to hand over.
func (s *Server) exportSubject(w http.ResponseWriter, r *http.Request) {
	in, ok := s.subjectRequest(w, r)
	if !ok {
		return
	}
	x, err := s.deps.Subjects.ExportSubject(r.Context(), sb.Subject{Number: in.Number, ExternalRef: in.ExternalRef}, in.Reason)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="subject-export.json"`)
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, http.StatusOK, x)
}

// eraseSubject is POST /v1/subjects/erase: the person's recordings
// destroyed, their calls anonymised, the rest deleted; the receipt says
// what went.
func (s *Server) eraseSubject(w http.ResponseWriter, r *http.Request) {
	in, ok := s.subjectRequest(w, r)
	if !ok {
		return
	}
	rc, err := s.deps.Subjects.EraseSubject(r.Context(), sb.Subject{Number: in.Number, ExternalRef: in.ExternalRef}, in.Reason)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, rc)
}

// rectifySubject is POST /v1/subjects/rectify: a wrong number corrected on
// the tenant's call records.
func (s *Server) rectifySubject(w http.ResponseWriter, r *http.Request) {
	if s.deps.Subjects == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "requests about a person's data are not available here"))
		return
	}
	var in struct {
		Number      string `json:"number"`
		RightNumber string `json:"right_number"`
		Reason      string `json:"reason"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	n, err := s.deps.Subjects.RectifyNumber(r.Context(), in.Number, in.RightNumber, in.Reason)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]int64{"calls": n})
}
