package sip

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
)

// The SDP of a stream keyed with DTLS-SRTP over ICE (UDP/TLS/RTP/SAVP[F]):
// RFC 8839 (ICE attributes), RFC 8122 (a=fingerprint), RFC 4145 and
// RFC 8842 (a=setup), RFC 5761 (a=rtcp-mux), RFC 5888 and RFC 8843 (a=mid,
// BUNDLE), as WebRTC endpoints, WebRTC-capable SBCs and messenger
// platforms' SIP servers write them.

// DTLS roles as a=setup names them.
const (
	setupActpass = "actpass"
	setupActive  = "active"  // the DTLS client
	setupPassive = "passive" // the DTLS server
)

// maxCandidates is how many of the far end's candidates we check: enough
// for every interface and family a peer has, and a bound on the checks a
// description can make us send.
const maxCandidates = 16

// iceParams are the far end's ICE and DTLS parameters of one stream.
type iceParams struct {
	Ufrag, Pwd   string
	Lite         bool          // a=ice-lite: the far end never checks, we are controlling
	Candidates   []string      // a=candidate values (UDP only; RFC 8445 §5.1.1)
	Fingerprints []fingerprint // the certificate the far end's DTLS must show
	Setup        string        // actpass, active or passive; RFC 4145's default, active, when absent
	Mid          string        // a=mid, echoed in the answer
	Bundle       bool          // a=group:BUNDLE names Mid: echoed
}

// fingerprint is one a=fingerprint: a hash function's name (lower case, as
// RFC 8122 registers them) and the certificate's digest in upper-case hex
// pairs separated by colons.
type fingerprint struct {
	Hash, Value string
}

func (f fingerprint) String() string { return f.Hash + " " + f.Value }

// fingerprintHashes are the hash functions whose fingerprints we can check.
var fingerprintHashes = map[string]bool{"sha-1": true, "sha-224": true, "sha-256": true, "sha-384": true, "sha-512": true}

var (
	iceCharRE   = regexp.MustCompile(`^[A-Za-z0-9+/]+$`) // RFC 8839 ice-char
	hexPairsRE  = regexp.MustCompile(`^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$`)
	midRE       = regexp.MustCompile(`^[!-~]{1,32}$`)
	errNoICEMux = errNoCrypto{"DTLS-SRTP without a=rtcp-mux is not supported: RTP and RTCP must share the ICE component"}
)

// parseICE reads a DTLS-SRTP stream's ICE and DTLS attributes, at the
// media level or, where RFC 8839 and RFC 8122 allow it, the session's.
// What is missing or malformed is an errNoCrypto (488): without it there
// is no key and no path.
func parseICE(sd *sdp.SessionDescription, m *sdp.MediaDescription) (*iceParams, error) {
	p := &iceParams{}
	value := func(key string) string {
		if v, ok := m.Attribute(key); ok {
			return strings.TrimSpace(v)
		}
		if v, ok := sd.Attribute(key); ok {
			return strings.TrimSpace(v)
		}
		return ""
	}
	p.Ufrag, p.Pwd = value("ice-ufrag"), value("ice-pwd")
	// RFC 8839 §5.4: a ufrag of 4 to 256 ice-chars, a password of 22 to 256.
	if len(p.Ufrag) < 4 || len(p.Ufrag) > 256 || !iceCharRE.MatchString(p.Ufrag) {
		return nil, errNoCrypto{"DTLS-SRTP offered without a usable a=ice-ufrag (ICE is required)"}
	}
	if len(p.Pwd) < 22 || len(p.Pwd) > 256 || !iceCharRE.MatchString(p.Pwd) {
		return nil, errNoCrypto{"DTLS-SRTP offered without a usable a=ice-pwd (ICE is required)"}
	}
	_, p.Lite = sd.Attribute("ice-lite")
	for _, attrs := range [][]sdp.Attribute{m.Attributes, sd.Attributes} {
		for _, a := range attrs {
			if a.Key != "fingerprint" {
				continue
			}
			hash, digest, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
			hash, digest = strings.ToLower(hash), strings.ToUpper(strings.TrimSpace(digest))
			if ok && fingerprintHashes[hash] && hexPairsRE.MatchString(digest) {
				p.Fingerprints = append(p.Fingerprints, fingerprint{Hash: hash, Value: digest})
			}
		}
		if len(p.Fingerprints) > 0 {
			break // media-level fingerprints replace the session's (RFC 8122 §5)
		}
	}
	if len(p.Fingerprints) == 0 {
		return nil, errNoCrypto{"DTLS-SRTP offered without a fingerprint we can check (a=fingerprint with sha-1 or sha-2)"}
	}
	switch p.Setup = strings.ToLower(value("setup")); p.Setup {
	case "":
		p.Setup = setupActive // RFC 4145 §4
	case setupActpass, setupActive, setupPassive:
	default:
		return nil, errNoCrypto{fmt.Sprintf("a=setup:%s is not supported: we take actpass, active or passive", p.Setup)}
	}
	if _, ok := m.Attribute("rtcp-mux"); !ok {
		return nil, errNoICEMux
	}
	for _, a := range m.Attributes {
		if a.Key != "candidate" {
			continue
		}
		// foundation component transport priority address port typ type ...
		f := strings.Fields(a.Value)
		if len(f) >= 8 && f[1] == "1" && strings.EqualFold(f[2], "udp") && len(p.Candidates) < maxCandidates {
			p.Candidates = append(p.Candidates, a.Value)
		}
	}
	if mid, ok := m.Attribute("mid"); ok && midRE.MatchString(mid) {
		p.Mid = mid
		if group, ok := sd.Attribute("group"); ok {
			if f := strings.Fields(group); len(f) > 1 && strings.EqualFold(f[0], "BUNDLE") {
				p.Bundle = slices.Contains(f[1:], mid)
			}
		}
	}
	return p, nil
}

// sameAssociation reports whether a later answer keeps the DTLS
// association and ICE session p began (RFC 8842 §5.2, RFC 8839 §4.4.1.1):
// the same credentials and a fingerprint in common.
func (p *iceParams) sameAssociation(later *iceParams) (bool, string) {
	if later.Ufrag != p.Ufrag || later.Pwd != p.Pwd {
		return false, "new ICE credentials in an answer to an offer that did not restart ICE"
	}
	if !p.sameCertificate(later) {
		return false, "a new DTLS association (another a=fingerprint) is not supported on a call in progress"
	}
	return true, ""
}

// sameCertificate reports whether later names a fingerprint p named.
func (p *iceParams) sameCertificate(later *iceParams) bool {
	for _, a := range p.Fingerprints {
		for _, b := range later.Fingerprints {
			if a == b {
				return true
			}
		}
	}
	return false
}

// answerSetup is our a=setup in answer to theirs: active when they take
// either role (RFC 5763 §5 lets the answerer choose; browsers answer
// active), else the other role.
func answerSetup(theirs string) string {
	if theirs == setupActive {
		return setupPassive
	}
	return setupActive
}
