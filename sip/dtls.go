package sip

import (
	"context"
	gocrypto "crypto"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	dtlsfp "github.com/pion/dtls/v3/pkg/crypto/fingerprint"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	dtlsnet "github.com/pion/dtls/v3/pkg/net"
	"github.com/pion/ice/v4"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/packetio"
)

// DTLS-SRTP over ICE on a SIP leg (RFC 5763, RFC 5764; ICE as RFC 8445
// and RFC 8839 have it, the way WebRTC does it): full ICE (pion/ice) on
// the leg's own RTP socket, a DTLS handshake (pion/dtls) over the pair ICE
// selects, whose certificate must match the far end's a=fingerprint, and
// SRTP keyed from it (RFC 5764 §4.2) protecting the RTP. RTP and RTCP
// share the one component (rtcp-mux); DTLS and RTP are told apart by their
// first byte (RFC 7983). A mismatched certificate, no ICE path, or a
// handshake that never ends, is reported once, and the call ends saying
// why: never media in the clear, never media with a stranger.

const (
	// iceConnectTimeout bounds the connectivity checks: a far end that
	// answers none in this time has no path to us.
	iceConnectTimeout = 30 * time.Second
	// dtlsHandshakeTimeout bounds the DTLS handshake once ICE connected.
	dtlsHandshakeTimeout = 15 * time.Second
	// gatherTimeout bounds gathering our candidates (host candidates of
	// one socket: immediate).
	gatherTimeout = 2 * time.Second
	// dtlsBuffer bounds the DTLS records waiting for the handshake: a
	// flight is a few KiB, and what comes beyond this is dropped.
	dtlsBuffer = 1 << 20
)

// errFingerprintMismatch is the far end's certificate not being the one
// its SDP's a=fingerprint names.
var errFingerprintMismatch = errors.New("the far end's DTLS certificate does not match the a=fingerprint of its SDP")

// dtlsIdentity is the server's DTLS certificate: self-signed, as RFC 5763
// wants, and named in our SDP by its SHA-256 fingerprint. One per server:
// a re-INVITE's description names the same one.
type dtlsIdentity struct {
	cert        tls.Certificate
	fingerprint fingerprint
}

func newDTLSIdentity() (*dtlsIdentity, error) {
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		return nil, fmt.Errorf("sip: DTLS certificate: %w", err)
	}
	x, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("sip: DTLS certificate: %w", err)
	}
	fp, err := dtlsfp.Fingerprint(x, gocrypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sip: DTLS certificate: %w", err)
	}
	return &dtlsIdentity{cert: cert, fingerprint: fingerprint{Hash: "sha-256", Value: strings.ToUpper(fp)}}, nil
}

// dtlsIdentity returns the server's DTLS certificate, made on first use.
func (s *Server) dtlsIdentity() (*dtlsIdentity, error) {
	s.dtlsOnce.Do(func() { s.dtlsID, s.dtlsErr = newDTLSIdentity() })
	return s.dtlsID, s.dtlsErr
}

// verifyFingerprint checks the far end's certificate against the
// fingerprints its SDP gave.
func verifyFingerprint(want []fingerprint) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errFingerprintMismatch
		}
		cert, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("the far end's DTLS certificate: %w", err)
		}
		for _, f := range want {
			hash, err := dtlsfp.HashFromString(f.Hash)
			if err != nil {
				continue
			}
			got, err := dtlsfp.Fingerprint(cert, hash)
			if err == nil && strings.EqualFold(got, f.Value) {
				return nil
			}
		}
		return errFingerprintMismatch
	}
}

// srtpProfiles are the DTLS-SRTP protection profiles we offer in the
// handshake, most preferred first (RFC 5764, RFC 7714).
var dtlsSRTPProfiles = map[dtls.SRTPProtectionProfile]srtp.ProtectionProfile{
	dtls.SRTP_AEAD_AES_256_GCM:       srtp.ProtectionProfileAeadAes256Gcm,
	dtls.SRTP_AEAD_AES_128_GCM:       srtp.ProtectionProfileAeadAes128Gcm,
	dtls.SRTP_AES128_CM_HMAC_SHA1_80: srtp.ProtectionProfileAes128CmHmacSha1_80,
	dtls.SRTP_AES128_CM_HMAC_SHA1_32: srtp.ProtectionProfileAes128CmHmacSha1_32,
}

// iceTransport is a leg's media path when it is DTLS-SRTP over ICE. It
// owns the leg's RTP socket (through an ICE UDP mux) from the start.
type iceTransport struct {
	id         *dtlsIdentity
	agent      *ice.Agent
	mux        *ice.UDPMuxDefault
	ufrag, pwd string
	candidates []string // ours, as a=candidate values
	log        *slog.Logger

	// deliver takes each RTP packet the far end sent, decrypted; failed
	// reports a path that could not be set up or broke, once.
	deliver func([]byte)
	failed  func(reason string)
	forged  func() // counts an SRTP packet that failed authentication

	mu       sync.Mutex
	gathered chan struct{} // closed when the gathering under way ends
	remote   *iceParams    // the far end's, from its first offer or answer (credentials: the latest)
	proto    string        // the transport our descriptions name
	role     string        // our DTLS role: active or passive; "" until their description is in
	started  bool
	dconn    *dtls.Conn

	srtp atomic.Pointer[srtpSession] // set once the handshake keyed SRTP
	conn atomic.Pointer[ice.Conn]    // the selected pair, once ICE connected
	in   *packetio.Buffer            // DTLS records for the handshake

	ctx      context.Context
	cancel   context.CancelFunc
	failOnce sync.Once
	done     chan struct{}  // run returned
	reading  sync.WaitGroup // the read loop
}

// newICETransport gathers our candidates on conn (announced as publicIP
// when set) and readies the agent; nothing is sent until start.
func newICETransport(conn *net.UDPConn, id *dtlsIdentity, publicIP netip.Addr, log *slog.Logger) (*iceTransport, error) {
	t := &iceTransport{id: id, log: log, in: packetio.NewBuffer(), done: make(chan struct{}),
		proto: "UDP/TLS/RTP/SAVPF", deliver: func([]byte) {}, failed: func(string) {}, forged: func() {}}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.in.SetLimitSize(dtlsBuffer)
	t.ufrag, t.pwd = iceSecret(12), iceSecret(24) // 16 and 32 ice-chars: RFC 8839's 24 and 128 bits and more
	t.mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn})
	network := ice.NetworkTypeUDP4
	if conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap().Is6() {
		network = ice.NetworkTypeUDP6
	}
	opts := []ice.AgentOption{
		ice.WithUDPMux(t.mux),
		ice.WithLocalCredentials(t.ufrag, t.pwd),
		ice.WithNetworkTypes([]ice.NetworkType{network}),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost}),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		// The socket is bound to the address the call's SIP came to,
		// which is loopback only when the far end is on this host.
		ice.WithIncludeLoopback(),
	}
	if publicIP.IsValid() {
		opts = append(opts, ice.WithAddressRewriteRules(ice.AddressRewriteRule{External: []string{publicIP.String()}, AsCandidateType: ice.CandidateTypeHost}))
	}
	var err error
	if t.agent, err = ice.NewAgentWithOptions(opts...); err != nil {
		t.mux.Close()
		return nil, fmt.Errorf("sip: ICE agent: %w", err)
	}
	if err := t.agent.OnCandidate(func(c ice.Candidate) {
		if c != nil {
			return
		}
		t.mu.Lock()
		done := t.gathered
		t.gathered = nil
		t.mu.Unlock()
		if done != nil {
			close(done)
		}
	}); err != nil {
		t.close()
		return nil, fmt.Errorf("sip: ICE: %w", err)
	}
	if err := t.agent.OnConnectionStateChange(func(s ice.ConnectionState) {
		if s == ice.ConnectionStateFailed {
			t.fail("ICE failed: the far end stopped answering connectivity checks")
		}
	}); err != nil {
		t.close()
		return nil, fmt.Errorf("sip: ICE: %w", err)
	}
	if err := t.gather(); err != nil {
		t.close()
		return nil, fmt.Errorf("sip: ICE on %s: %w", conn.LocalAddr(), err)
	}
	return t, nil
}

// gather gathers our candidates (again after an ICE restart) and takes
// them for our descriptions.
func (t *iceTransport) gather() error {
	done := make(chan struct{})
	t.mu.Lock()
	t.gathered = done
	t.mu.Unlock()
	if err := t.agent.GatherCandidates(); err != nil {
		return fmt.Errorf("gathering: %w", err)
	}
	select {
	case <-done:
	case <-time.After(gatherTimeout):
	}
	local, err := t.agent.GetLocalCandidates()
	if err != nil || len(local) == 0 {
		return fmt.Errorf("no candidate gathered (%v)", err)
	}
	var values []string
	for _, c := range local {
		values = append(values, c.Marshal())
	}
	t.mu.Lock()
	t.candidates = values
	t.mu.Unlock()
	return nil
}

// iceSecret is n random bytes as ice-chars.
func iceSecret(n int) string {
	b := make([]byte, n)
	crand.Read(b) // never fails (crypto/rand)
	return base64.RawStdEncoding.EncodeToString(b)
}

// answering takes the far end's offer: our role is the one answerSetup
// gives, and our answer names the transport it offered.
func (t *iceTransport) answering(remote *iceParams, proto string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.remote, t.role, t.proto = remote, answerSetup(remote.Setup), proto
}

// answered takes the far end's answer to our offer (actpass): it chose
// its role, we take the other.
func (t *iceTransport) answered(remote *iceParams) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.remote != nil {
		if ok, why := t.remote.sameAssociation(remote); !ok {
			return errors.New(why)
		}
		return nil
	}
	switch remote.Setup {
	case setupActive:
		t.role = setupPassive
	case setupPassive:
		t.role = setupActive
	default:
		return errors.New("the answer's a=setup is actpass: an answerer must choose active or passive (RFC 5763 §5)")
	}
	t.remote = remote
	return nil
}

// later checks a later offer (isOffer) or answer of the far end's on this
// association: it must keep it (a certificate in common, a role that fits
// ours). New ICE credentials are an ICE restart (RFC 8839 §4.4.1.1.1): our
// agent restarts with new credentials of ours and gathers again, and the
// DTLS association and its SRTP keys go on over the pair the new checks
// select. New candidates are taken.
func (t *iceTransport) later(p *iceParams, isOffer bool) error {
	t.mu.Lock()
	remote, role := t.remote, t.role
	t.mu.Unlock()
	if remote == nil {
		return errors.New("the call's DTLS-SRTP is not set up yet")
	}
	if !remote.sameCertificate(p) {
		return errors.New("a new DTLS association (another a=fingerprint) is not supported on a call in progress")
	}
	if p.Setup == role {
		return fmt.Errorf("a=setup:%s would make both ends DTLS %s: the association is kept only in the roles it has", p.Setup, map[string]string{setupActive: "clients", setupPassive: "servers"}[role])
	}
	if p.Ufrag != remote.Ufrag || p.Pwd != remote.Pwd {
		if !isOffer {
			return errors.New("an answer cannot restart ICE (new a=ice-ufrag or a=ice-pwd): we did not ask for a restart")
		}
		if err := t.restart(p); err != nil {
			return fmt.Errorf("ICE restart failed: %w", err)
		}
	}
	t.addCandidates(p.Candidates)
	return nil
}

// restart restarts ICE for the far end's new credentials.
func (t *iceTransport) restart(p *iceParams) error {
	ufrag, pwd := iceSecret(12), iceSecret(24)
	if err := t.agent.Restart(ufrag, pwd); err != nil {
		return err
	}
	if err := t.gather(); err != nil {
		return err
	}
	if err := t.agent.SetRemoteCredentials(p.Ufrag, p.Pwd); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	restarted := *t.remote
	restarted.Ufrag, restarted.Pwd, restarted.Candidates = p.Ufrag, p.Pwd, p.Candidates
	t.remote, t.ufrag, t.pwd = &restarted, ufrag, pwd
	t.log.Info("ICE restarted by the far end")
	return nil
}

func (t *iceTransport) addCandidates(values []string) {
	for _, v := range values {
		c, err := ice.UnmarshalCandidate(v)
		if err != nil {
			t.log.Debug("ICE candidate ignored", "err", err)
			continue
		}
		if err := t.agent.AddRemoteCandidate(c); err != nil {
			t.log.Debug("ICE candidate ignored", "err", err)
		}
	}
}

// start runs ICE and the handshake once, in the background: the far
// end's description is in and ours is on its way. We are controlling
// when we offered, or when the far end is ICE-lite (RFC 8445 §6.1.1).
func (t *iceTransport) start(offerer bool) {
	t.mu.Lock()
	if t.started || t.remote == nil {
		t.mu.Unlock()
		return
	}
	t.started = true
	remote, role := t.remote, t.role
	t.mu.Unlock()
	t.addCandidates(remote.Candidates)
	go t.run(remote, role, offerer || remote.Lite)
}

func (t *iceTransport) run(remote *iceParams, role string, controlling bool) {
	defer close(t.done)
	ctx, cancel := context.WithTimeout(t.ctx, iceConnectTimeout)
	var conn *ice.Conn
	var err error
	if controlling {
		conn, err = t.agent.Dial(ctx, remote.Ufrag, remote.Pwd)
	} else {
		conn, err = t.agent.Accept(ctx, remote.Ufrag, remote.Pwd)
	}
	cancel()
	if err != nil {
		t.fail(fmt.Sprintf("ICE found no path to the far end within %s", iceConnectTimeout))
		return
	}
	t.conn.Store(conn)
	t.reading.Add(1)
	go t.readLoop(conn)

	// The certificate is self-signed: it is trusted by its fingerprint in
	// the SDP, which the signalling (SIP over TLS, authenticated) carried,
	// not by a chain.
	shared := []dtls.Option{
		dtls.WithCertificates(t.id.cert),
		dtls.WithSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.SRTP_AES128_CM_HMAC_SHA1_32),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true),
		dtls.WithVerifyPeerCertificate(verifyFingerprint(remote.Fingerprints)),
	}
	pc := dtlsnet.PacketConnFromConn(&dtlsEndpoint{ice: conn, in: t.in})
	var dc *dtls.Conn
	if role == setupActive {
		opts := make([]dtls.ClientOption, 0, len(shared))
		for _, o := range shared {
			opts = append(opts, o)
		}
		dc, err = dtls.ClientWithOptions(pc, conn.RemoteAddr(), opts...)
	} else {
		opts := []dtls.ServerOption{dtls.WithClientAuth(dtls.RequireAnyClientCert)}
		for _, o := range shared {
			opts = append(opts, o)
		}
		dc, err = dtls.ServerWithOptions(pc, conn.RemoteAddr(), opts...)
	}
	if err != nil {
		t.fail("DTLS: " + err.Error())
		return
	}
	t.mu.Lock()
	if t.ctx.Err() != nil {
		// close came first and found no connection to close.
		t.mu.Unlock()
		dc.Close()
		return
	}
	t.dconn = dc
	t.mu.Unlock()
	hctx, hcancel := context.WithTimeout(t.ctx, dtlsHandshakeTimeout)
	err = dc.HandshakeContext(hctx)
	hcancel()
	switch {
	case errors.Is(err, errFingerprintMismatch):
		t.fail("DTLS handshake refused: " + errFingerprintMismatch.Error())
		return
	case err != nil:
		t.fail("DTLS handshake failed: " + err.Error())
		return
	}
	sess, err := srtpFromDTLS(dc, role == setupActive)
	if err != nil {
		t.fail("DTLS-SRTP keys: " + err.Error())
		return
	}
	t.srtp.Store(sess)
	t.log.Debug("DTLS-SRTP up", "suite", sess.local.Suite, "role", role, "pair", conn.RemoteAddr())
	// Read on: the far end's retransmitted Finished and its close_notify
	// are the DTLS connection's to answer.
	buf := make([]byte, 1500)
	for {
		if _, err := dc.Read(buf); err != nil {
			return
		}
	}
}

// srtpFromDTLS keys SRTP from a finished handshake (RFC 5764 §4.2).
func srtpFromDTLS(dc *dtls.Conn, client bool) (*srtpSession, error) {
	selected, ok := dc.SelectedSRTPProtectionProfile()
	profile, known := dtlsSRTPProfiles[selected]
	if !ok || !known {
		return nil, errors.New("the handshake chose no SRTP protection profile (use_srtp)")
	}
	state, ok := dc.ConnectionState()
	if !ok {
		return nil, errors.New("no DTLS connection state")
	}
	config := srtp.Config{Profile: profile}
	if err := config.ExtractSessionKeysFromDTLS(&state, client); err != nil {
		return nil, err
	}
	k := config.Keys
	return newKeyedSRTPSession(profile, append(k.LocalMasterKey, k.LocalMasterSalt...), append(k.RemoteMasterKey, k.RemoteMasterSalt...))
}

// readLoop takes what comes over the selected pair: DTLS records to the
// handshake, SRTP decrypted to the leg, SRTCP dropped (RFC 7983).
func (t *iceTransport) readLoop(conn *ice.Conn) {
	defer t.reading.Done()
	buf, plain := make([]byte, 1500), make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		if n == 0 {
			continue
		}
		switch b := buf[0]; {
		case b >= 20 && b <= 63:
			if _, err := t.in.Write(buf[:n], nil); err != nil && !errors.Is(err, packetio.ErrFull) {
				return // closed
			}
		case b >= 128 && b <= 191 && n >= 12:
			if buf[1] >= 192 && buf[1] <= 223 {
				continue // SRTCP (RFC 5761): not used
			}
			s := t.srtp.Load()
			if s == nil {
				continue // before the keys: nothing can be authenticated
			}
			pkt, err := s.decrypt(plain[:0], buf[:n])
			if err != nil {
				t.forged()
				continue
			}
			t.deliver(pkt)
		}
	}
}

// writeRTP protects pkt and sends it over the selected pair; before the
// handshake keyed SRTP, or while an ICE restart has no pair yet, it is
// dropped.
func (t *iceTransport) writeRTP(pkt []byte) error {
	s, conn := t.srtp.Load(), t.conn.Load()
	if s == nil || conn == nil {
		return nil
	}
	return s.encrypt(pkt, func(b []byte) error {
		if _, err := conn.Write(b); err != nil && !errors.Is(err, ice.ErrNoCandidatePairs) {
			return err
		}
		return nil
	})
}

// ready reports whether SRTP is keyed: media flows.
func (t *iceTransport) ready() bool { return t.srtp.Load() != nil }

func (t *iceTransport) fail(reason string) {
	if t.ctx.Err() != nil {
		return // closing: not a failure
	}
	t.failOnce.Do(func() {
		t.log.Info("DTLS-SRTP media failed", "reason", reason)
		t.failed(reason)
	})
}

// close stops the agent and the handshake and waits for them.
func (t *iceTransport) close() {
	t.mu.Lock()
	t.cancel() // under mu: run sees it, or close sees run's connection
	t.mu.Unlock()
	t.mu.Lock()
	started, dc := t.started, t.dconn
	t.mu.Unlock()
	if dc != nil {
		dc.Close()
	}
	t.in.Close()
	t.agent.Close()
	t.mux.Close()
	if started {
		<-t.done
	}
	t.reading.Wait()
}

// dtlsEndpoint is the DTLS side of the selected pair: records the read
// loop routed to it in, writes straight out.
type dtlsEndpoint struct {
	ice *ice.Conn
	in  *packetio.Buffer
}

func (e *dtlsEndpoint) Read(b []byte) (int, error) {
	n, _, err := e.in.Read(b, nil)
	return n, err
}
func (e *dtlsEndpoint) Write(b []byte) (int, error)        { return e.ice.Write(b) }
func (e *dtlsEndpoint) Close() error                       { return nil } // the transport closes what it owns
func (e *dtlsEndpoint) LocalAddr() net.Addr                { return e.ice.LocalAddr() }
func (e *dtlsEndpoint) RemoteAddr() net.Addr               { return e.ice.RemoteAddr() }
func (e *dtlsEndpoint) SetDeadline(t time.Time) error      { return e.in.SetReadDeadline(t) }
func (e *dtlsEndpoint) SetReadDeadline(t time.Time) error  { return e.in.SetReadDeadline(t) }
func (e *dtlsEndpoint) SetWriteDeadline(t time.Time) error { return nil }

// The SDP we write for it.

func (t *iceTransport) mediaProto() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.proto
}

// sessionLines writes the BUNDLE group: in our offer, around our one
// stream (WebRTC answerers reject a stream outside one, RFC 8843); in an
// answer or a later description, when the far end grouped its mid.
func (t *iceTransport) sessionLines(b *strings.Builder) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.remote == nil:
		b.WriteString("a=group:BUNDLE 0\r\n")
	case t.remote.Bundle:
		fmt.Fprintf(b, "a=group:BUNDLE %s\r\n", t.remote.Mid)
	}
}

// mediaLines writes our ICE and DTLS attributes: our role once known,
// actpass in an offer before it is (RFC 5763 §5), the same role in every
// later description so the association is kept.
func (t *iceTransport) mediaLines(b *strings.Builder) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.remote != nil && t.remote.Mid != "":
		fmt.Fprintf(b, "a=mid:%s\r\n", t.remote.Mid)
	case t.remote == nil:
		b.WriteString("a=mid:0\r\n") // our offer: WebRTC answerers want one
	}
	setup := t.role
	if setup == "" {
		setup = setupActpass
	}
	fmt.Fprintf(b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:%s\r\na=setup:%s\r\na=rtcp-mux\r\n", t.ufrag, t.pwd, t.id.fingerprint, setup)
	for _, c := range t.candidates {
		fmt.Fprintf(b, "a=candidate:%s\r\n", c)
	}
	b.WriteString("a=end-of-candidates\r\n")
}
