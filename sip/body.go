package sip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Message bodies (RFC 5621). A carrier interworking with the PSTN (SIP-I,
// SIP-T) sends multipart/mixed: the session description beside the ISUP
// message it was made from (application/ISUP, Content-Disposition:
// signal). What we take from any body is its session description; every
// other part is passed over when its sender marked it handling=optional,
// and refuses the message when it must be understood, which is what a
// part without a handling parameter must be (RFC 3261 §20.11: "required"
// is assumed), whatever its disposition, known or not. sessionSDP is the
// one place a far end's SDP is read from a message: INVITE, re-INVITE,
// UPDATE, PRACK and ACK, and the responses to the calls we place.

// bodied is a request or a response, with its body.
type bodied interface {
	headered
	Body() []byte
	ContentType() *sip.ContentTypeHeader
}

// accepted is what a body may be, as the Accept header of a 415 and of
// our answer to OPTIONS says it.
const accepted = "application/sdp, multipart/mixed, multipart/alternative"

// maxParts bounds the parts of a multipart body and how deep multiparts
// nest: an SDP beside an ISUP message is two.
const (
	maxParts = 16
	maxDepth = 4
)

// bodyError is why a message's body cannot be taken: 415 for a part that
// must be understood and is not (RFC 5621 §9.3, RFC 3261 §21.4.13), 400
// for a body that cannot be read.
type bodyError struct {
	code   int
	reason string
}

func (e *bodyError) Error() string { return e.reason }

// response is the final response that refuses req for its body; a 415
// lists what we take (RFC 3261 §21.4.13).
func (e *bodyError) response(req *sip.Request) *sip.Response {
	res := rejection(req, e.code, e.reason)
	if e.code == sip.StatusUnsupportedMediaType {
		res.AppendHeader(sip.NewHeader("Accept", accepted))
	}
	return res
}

func malformedBody(format string, a ...any) *bodyError {
	return &bodyError{code: sip.StatusBadRequest, reason: "malformed body: " + fmt.Sprintf(format, a...)}
}

// bodyPart is a message's body, or one part of a multipart body.
type bodyPart struct {
	mediaType   string // lower case, without parameters
	params      map[string]string
	disposition string // lower case; "" when none is given
	optional    bool   // handling=optional
	encoding    string // Content-Transfer-Encoding, lower case
	body        []byte
}

// sessionSDP returns the session description m carries: its body when
// that is application/sdp, the application/sdp part of a multipart/mixed
// body, the last SDP alternative of a multipart/alternative one (the one
// its sender prefers, RFC 2046 §5.1.4); nil when it carries none (no body,
// or only parts marked optional). A bodyError refuses the message.
func sessionSDP(m bodied) ([]byte, *bodyError) {
	body := m.Body()
	if len(body) == 0 {
		return nil, nil
	}
	p := bodyPart{body: body}
	if ct := m.ContentType(); ct != nil {
		var err error
		if p.mediaType, p.params, err = mime.ParseMediaType(ct.Value()); err != nil {
			return nil, malformedBody("Content-Type %q: %v", ct.Value(), err)
		}
	}
	if h := m.GetHeader("Content-Disposition"); h != nil {
		if be := p.dispose(h.Value()); be != nil {
			return nil, be
		}
	}
	return p.sdp(0)
}

// describedIn is the session description m carries, read as parseOffer
// reads one: an error when its body is refused or carries none.
func describedIn(m bodied) (*offer, error) {
	sdp, be := sessionSDP(m)
	switch {
	case be != nil:
		return nil, be
	case sdp == nil:
		return nil, errors.New("no session description")
	}
	return parseOffer(sdp)
}

// dispose reads a Content-Disposition value into p.
func (p *bodyPart) dispose(value string) *bodyError {
	disposition, params, err := mime.ParseMediaType(value)
	if err != nil {
		return malformedBody("Content-Disposition %q: %v", value, err)
	}
	p.disposition = disposition
	p.optional = strings.EqualFold(params["handling"], "optional")
	return nil
}

// sdp is sessionSDP of one body or part, nested depth multiparts deep.
func (p *bodyPart) sdp(depth int) ([]byte, *bodyError) {
	switch {
	case p.mediaType == "application/sdp" && (p.disposition == "" || p.disposition == "session") && identityEncoded(p.encoding):
		if depth > 0 && !bytes.HasSuffix(p.body, []byte("\n")) {
			// The line break before a boundary belongs to the boundary
			// (RFC 2046 §5.1.1), and an SDP's last line ends with one.
			return append(p.body, '\r', '\n'), nil
		}
		return p.body, nil
	case p.mediaType == "multipart/alternative" && depth < maxDepth:
		return p.alternative(depth)
	case strings.HasPrefix(p.mediaType, "multipart/") && depth < maxDepth:
		// Any other multipart subtype is read as mixed (RFC 2046 §5.1.7).
		return p.mixed(depth)
	}
	return nil, p.notUnderstood()
}

// notUnderstood passes over a part we do not understand when it is
// optional, and refuses the message when it is not.
func (p *bodyPart) notUnderstood() *bodyError {
	if p.optional {
		return nil
	}
	what := p.mediaType
	if what == "" {
		what = "without a Content-Type"
	}
	if p.disposition != "" {
		what += " (" + p.disposition + ")"
	}
	return &bodyError{code: sip.StatusUnsupportedMediaType, reason: "a body " + what + " that must be understood is not understood here"}
}

// mixed is the session description among the parts of a multipart/mixed
// body: one at most.
func (p *bodyPart) mixed(depth int) ([]byte, *bodyError) {
	parts, err := p.parts()
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, malformedBody("%s without parts", p.mediaType)
	}
	var found []byte
	for _, part := range parts {
		sdp, err := part.sdp(depth + 1)
		switch {
		case err != nil:
			return nil, err
		case sdp != nil && found != nil:
			return nil, malformedBody("two session descriptions")
		case sdp != nil:
			found = sdp
		}
	}
	return found, nil
}

// alternative is the session description a multipart/alternative body
// offers: its last SDP alternative. The alternatives' own handling does
// not matter, the whole's does (RFC 5621 §8.2): one we understand is
// enough, none is a part not understood.
func (p *bodyPart) alternative(depth int) ([]byte, *bodyError) {
	parts, err := p.parts()
	if err != nil {
		return nil, err
	}
	var found []byte
	for _, part := range parts {
		part.optional = true
		sdp, err := part.sdp(depth + 1)
		switch {
		case err != nil && err.code == sip.StatusBadRequest:
			return nil, err
		case sdp != nil:
			found = sdp
		}
	}
	if found == nil {
		return nil, p.notUnderstood()
	}
	return found, nil
}

// parts splits a multipart body.
func (p *bodyPart) parts() ([]bodyPart, *bodyError) {
	boundary := p.params["boundary"]
	if boundary == "" {
		return nil, malformedBody("%s without a boundary", p.mediaType)
	}
	r := multipart.NewReader(bytes.NewReader(p.body), boundary)
	var parts []bodyPart
	for {
		raw, err := r.NextRawPart()
		if errors.Is(err, io.EOF) {
			return parts, nil
		}
		if err != nil {
			return nil, malformedBody("%s: %v", p.mediaType, err)
		}
		if len(parts) == maxParts {
			return nil, malformedBody("more than %d parts", maxParts)
		}
		part, be := readPart(raw.Header, raw)
		if be != nil {
			return nil, be
		}
		parts = append(parts, part)
	}
}

// readPart reads one part of a multipart body: its headers, then its
// content. A part without a Content-Type is text/plain (RFC 2046 §5.1).
func readPart(h textproto.MIMEHeader, r io.Reader) (bodyPart, *bodyError) {
	p := bodyPart{mediaType: "text/plain", encoding: strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))}
	if ct := h.Get("Content-Type"); ct != "" {
		var err error
		if p.mediaType, p.params, err = mime.ParseMediaType(ct); err != nil {
			return p, malformedBody("a part's Content-Type %q: %v", ct, err)
		}
	}
	if cd := h.Get("Content-Disposition"); cd != "" {
		if be := p.dispose(cd); be != nil {
			return p, be
		}
	}
	var err error
	if p.body, err = io.ReadAll(r); err != nil {
		return p, malformedBody("a %s part: %v", p.mediaType, err)
	}
	return p, nil
}

// identityEncoded reports whether a part's Content-Transfer-Encoding
// leaves its content as it is: an SDP in base64 or quoted-printable is a
// part we do not read.
func identityEncoded(encoding string) bool {
	switch encoding {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}
