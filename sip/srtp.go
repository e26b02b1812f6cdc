package sip

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SRTP on the trunk side, keyed in the SDP (SDES, RFC 4568): a trunk that
// offers RTP/SAVP with a=crypto lines gets an answer with our own key for
// the first suite we share, and the leg encrypts what it sends with ours
// and decrypts what it receives with theirs. An RTP/SAVP offer with no
// suite we share is refused with 488, never answered in the clear.

// sdesSuites are the crypto suites we take, by SDP name: RFC 4568's, RFC
// 6188's AES-256 and RFC 7714's AES-GCM.
var sdesSuites = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
	"AES_256_CM_HMAC_SHA1_80": srtp.ProtectionProfileAes256CmHmacSha1_80,
	"AES_256_CM_HMAC_SHA1_32": srtp.ProtectionProfileAes256CmHmacSha1_32,
	"AEAD_AES_128_GCM":        srtp.ProtectionProfileAeadAes128Gcm,
	"AEAD_AES_256_GCM":        srtp.ProtectionProfileAeadAes256Gcm,
}

// errNoCrypto is returned by parseOffer when an SRTP offer has no crypto
// suite we take, or its transport is one we do not speak; the caller
// answers 488.
type errNoCrypto struct{ reason string }

func (e errNoCrypto) Error() string { return e.reason }

// crypto is one a=crypto attribute: a tag, a suite and its master key and
// salt, concatenated as on the wire.
type crypto struct {
	Tag     int
	Suite   string
	Profile srtp.ProtectionProfile
	KeySalt []byte
}

// parseCrypto reads "tag suite inline:key[|lifetime][|mki:len] [params]".
// It refuses what it cannot use: unknown suites, keys of the wrong length,
// MKIs, several keys, and session parameters that weaken or change the
// protection.
func parseCrypto(value string) (crypto, error) {
	f := strings.Fields(value)
	if len(f) < 3 {
		return crypto{}, fmt.Errorf("crypto %q: want tag, suite and key", value)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 {
		return crypto{}, fmt.Errorf("crypto tag %q", f[0])
	}
	c := crypto{Tag: tag, Suite: strings.ToUpper(f[1])}
	var ok bool
	if c.Profile, ok = sdesSuites[c.Suite]; !ok {
		return crypto{}, fmt.Errorf("crypto suite %s is not supported", f[1])
	}
	if len(f) > 3 {
		return crypto{}, fmt.Errorf("crypto session parameters %q are not supported", strings.Join(f[3:], " "))
	}
	if strings.Contains(f[2], ";") {
		return crypto{}, fmt.Errorf("crypto with several keys is not supported")
	}
	key, ok := strings.CutPrefix(f[2], "inline:")
	if !ok {
		return crypto{}, fmt.Errorf("crypto key method in %q is not inline", f[2])
	}
	key, params, _ := strings.Cut(key, "|")
	for _, p := range strings.Split(params, "|") {
		if strings.Contains(p, ":") {
			return crypto{}, fmt.Errorf("crypto with an MKI is not supported")
		}
	}
	if c.KeySalt, err = base64.StdEncoding.DecodeString(key); err != nil {
		if c.KeySalt, err = base64.RawStdEncoding.DecodeString(key); err != nil {
			return crypto{}, fmt.Errorf("crypto key is not base64")
		}
	}
	if want := keySaltLen(c.Profile); len(c.KeySalt) != want {
		return crypto{}, fmt.Errorf("crypto key for %s is %d bytes, want %d", c.Suite, len(c.KeySalt), want)
	}
	return c, nil
}

func keySaltLen(p srtp.ProtectionProfile) int {
	k, _ := p.KeyLen()
	s, _ := p.SaltLen()
	return k + s
}

// String is the attribute's value, as it goes into our SDP.
func (c crypto) String() string {
	return fmt.Sprintf("%d %s inline:%s", c.Tag, c.Suite, base64.StdEncoding.EncodeToString(c.KeySalt))
}

// srtpSession is a leg's SRTP: theirs decrypts what comes, ours encrypts
// what goes. Their key may change with a re-INVITE; ours stays for the
// call.
type srtpSession struct {
	local crypto
	dec   atomic.Pointer[srtpIn] // swapped when their key changes

	mu     sync.Mutex // guards enc, out and outHdr: writes come from several goroutines
	enc    *srtp.Context
	out    []byte
	outHdr rtp.Header // reused: pion allocates one per packet otherwise
	inHdr  rtp.Header // the read loop's, which alone decrypts
}

type srtpIn struct {
	remote crypto
	ctx    *srtp.Context
}

// newSRTPSession answers their crypto with a fresh key of ours for the
// same suite and tag.
func newSRTPSession(remote crypto) (*srtpSession, error) {
	local := crypto{Tag: remote.Tag, Suite: remote.Suite, Profile: remote.Profile, KeySalt: make([]byte, keySaltLen(remote.Profile))}
	if _, err := rand.Read(local.KeySalt); err != nil {
		return nil, err
	}
	return sessionOf(local, remote)
}

// newKeyedSRTPSession is a session whose keys a DTLS handshake gave (RFC
// 5764 §4.2): each a master key and salt, concatenated.
func newKeyedSRTPSession(p srtp.ProtectionProfile, local, remote []byte) (*srtpSession, error) {
	suite := ""
	for name, q := range sdesSuites {
		if q == p {
			suite = name
		}
	}
	return sessionOf(crypto{Tag: 1, Suite: suite, Profile: p, KeySalt: local}, crypto{Tag: 1, Suite: suite, Profile: p, KeySalt: remote})
}

// sessionOf encrypts with local and decrypts with remote.
func sessionOf(local, remote crypto) (*srtpSession, error) {
	enc, err := newSRTPContext(local)
	if err != nil {
		return nil, err
	}
	s := &srtpSession{local: local, enc: enc, out: make([]byte, 0, 1500)}
	if err := s.setRemote(remote); err != nil {
		return nil, err
	}
	return s, nil
}

func newSRTPContext(c crypto) (*srtp.Context, error) {
	k, _ := c.Profile.KeyLen()
	// Replays of what was already received are dropped (RFC 3711 3.3.2).
	return srtp.CreateContext(c.KeySalt[:k], c.KeySalt[k:], c.Profile, srtp.SRTPReplayProtection(128))
}

// setRemote takes their key from an offer or answer; the same key keeps
// the running context (and its replay window).
func (s *srtpSession) setRemote(remote crypto) error {
	if cur := s.dec.Load(); cur != nil && cur.remote.Suite == remote.Suite && bytes.Equal(cur.remote.KeySalt, remote.KeySalt) {
		return nil
	}
	if remote.Profile != s.local.Profile {
		return fmt.Errorf("crypto suite changed from %s to %s", s.local.Suite, remote.Suite)
	}
	ctx, err := newSRTPContext(remote)
	if err != nil {
		return err
	}
	s.dec.Store(&srtpIn{remote: remote, ctx: ctx})
	return nil
}

// srtpSuite names the session's suite, or "" for none.
func srtpSuite(s *srtpSession) string {
	if s == nil {
		return ""
	}
	return s.local.Suite
}

// encrypt protects an RTP packet; the result is valid until the next call.
func (s *srtpSession) encrypt(pkt []byte, write func([]byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := s.enc.EncryptRTP(s.out[:0], pkt, &s.outHdr)
	if err != nil {
		return err
	}
	s.out = out[:0]
	return write(out)
}

// decrypt authenticates and decrypts an SRTP packet into dst; packets that
// fail (forged, replayed, plain RTP) return an error and are dropped.
// Only the read loop calls it.
func (s *srtpSession) decrypt(dst, pkt []byte) ([]byte, error) {
	return s.dec.Load().ctx.DecryptRTP(dst, pkt, &s.inHdr)
}

// The SDP lines of an SDES-keyed stream.

func (s *srtpSession) mediaProto() string            { return "RTP/SAVP" }
func (s *srtpSession) sessionLines(*strings.Builder) {}
func (s *srtpSession) mediaLines(b *strings.Builder) { fmt.Fprintf(b, "a=crypto:%s\r\n", s.local) }
