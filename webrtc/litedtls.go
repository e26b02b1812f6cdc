package webrtc

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/transport/v5/packetio"
)

// liteCert is the DTLS certificate every operator session shows: one per
// process, as Janus and mediasoup do. Browsers check it against the
// fingerprint in our offer, which reaches them over the signed-in
// WebSocket; nothing else is asked of it.
type liteCert struct {
	cert        tls.Certificate
	fingerprint string // "AB:CD:…", SHA-256 of the DER form
}

func newLiteCert() (*liteCert, error) {
	c, err := selfsign.GenerateSelfSigned()
	if err != nil {
		return nil, fmt.Errorf("webrtc: DTLS certificate: %w", err)
	}
	sum := sha256.Sum256(c.Certificate[0])
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02X", b)
	}
	return &liteCert{cert: c, fingerprint: strings.Join(hexes, ":")}, nil
}

// verifyFunc checks the browser's certificate.
type verifyFunc = func(rawCerts [][]byte, chains [][]*x509.Certificate) error

// srtpProfiles are the SRTP protection profiles we take, best first.
var srtpProfiles = []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80}

// dtlsServerOptions are DTLS's settings when the browser connects (its
// answer says setup:active, as browsers' do): it must show a certificate
// (RFC 5763 §5), checked against its fingerprint instead of a CA.
func (e *Engine) dtlsServerOptions(verify verifyFunc) []dtls.ServerOption {
	return []dtls.ServerOption{
		dtls.WithCertificates(e.cert.cert),
		dtls.WithSRTPProtectionProfiles(srtpProfiles...),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		dtls.WithClientAuth(dtls.RequireAnyClientCert),
		dtls.WithInsecureSkipVerify(true),
		dtls.WithVerifyPeerCertificate(verify),
		dtls.WithLoggerFactory(e.pionLogs),
	}
}

// dtlsClientOptions are DTLS's settings when we connect (setup:passive).
func (e *Engine) dtlsClientOptions(verify verifyFunc) []dtls.ClientOption {
	return []dtls.ClientOption{
		dtls.WithCertificates(e.cert.cert),
		dtls.WithSRTPProtectionProfiles(srtpProfiles...),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true),
		dtls.WithVerifyPeerCertificate(verify),
		dtls.WithLoggerFactory(e.pionLogs),
	}
}

// litePeer stands for the browser in DTLS's view: the session sends to
// the nominated address, whatever DTLS names.
var litePeer net.Addr = &net.UDPAddr{IP: net.IPv4zero, Port: 9}

// litePacketConn is a session's DTLS transport: records the shared socket
// read for it come from buf, and what DTLS writes goes to the nominated
// address.
type litePacketConn struct {
	s   *liteSession
	buf *packetio.Buffer
}

func (c *litePacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, _, err := c.buf.Read(b, nil)
	return n, litePeer, err
}

func (c *litePacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	r := c.s.route.Load()
	if r == nil {
		return len(b), nil // nowhere yet: DTLS retransmits
	}
	return r.conn.WriteToAddrPort(b, r.to)
}

func (c *litePacketConn) Close() error { return c.buf.Close() }

func (c *litePacketConn) LocalAddr() net.Addr {
	if r := c.s.route.Load(); r != nil {
		return r.conn.LocalAddr()
	}
	return litePeer
}

func (c *litePacketConn) SetDeadline(t time.Time) error     { return c.buf.SetReadDeadline(t) }
func (c *litePacketConn) SetReadDeadline(t time.Time) error { return c.buf.SetReadDeadline(t) }
func (c *litePacketConn) SetWriteDeadline(time.Time) error  { return nil }
