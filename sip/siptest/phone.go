// Package siptest is a SIP phone that plays a trunk or PBX calling
// switchboard: sipgo for signalling, a real UDP socket for RTP. End-to-end
// tests and the load tool use it; it sends only to the address it is given.
package siptest

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// Options configure a phone.
type Options struct {
	Transport string      // "udp" (default), "tcp" or "tls"
	TLSConfig *tls.Config // for "tls": the roots that verify the server
	LocalIP   string      // default 127.0.0.1
	Codec     sb.Codec    // default PCMU
	DTMFType  uint8       // telephone-event payload type, default 101
	Username  string      // digest credentials, answered on 401/407
	Password  string
	Headers   map[string]string // extra INVITE headers
	Logger    *slog.Logger
	// SRTP, a crypto suite (e.g. AES_CM_128_HMAC_SHA1_80), makes the
	// phone offer RTP/SAVP keyed with SDES and protect its media; empty
	// is plain RTP.
	SRTP string
	// DTLS makes the phone offer DTLS-SRTP over ICE (UDP/TLS/RTP/SAVPF,
	// a pion PeerConnection: sip/siptest/dtls.go) instead.
	DTLS bool
	// DTLSFingerprint, with DTLS, is the a=fingerprint value the offer
	// names instead of its certificate's: a peer whose certificate does
	// not match its SDP.
	DTLSFingerprint string
	// DTLSSilent, with DTLS, closes the phone's PeerConnection once the
	// call is answered: an SBC whose media never comes (no ICE, no DTLS).
	DTLSSilent bool
	// ICELite, with DTLS, makes the phone an ICE-lite agent (a=ice-lite),
	// as some SBCs and media servers are: the far end must be controlling.
	ICELite bool
	// RefuseReinvite, when set, is the final response to every re-INVITE
	// (a PBX that takes no hold), leaving the call as it was.
	RefuseReinvite int
	// ReinviteCodec, when set, is the codec of the phone's answers to
	// re-INVITEs instead of the call's: a PBX whose 200 carries an answer
	// the far end cannot take.
	ReinviteCodec *sb.Codec
	// Refusals are the final responses to the far end's first re-INVITEs
	// and UPDATEs, in turn (e.g. 491 when it crossed an offer); those
	// after them are answered as usual.
	Refusals []int
	// AnnounceRTP, when set, is the RTP address the phone's SDP names
	// instead of its socket's: a phone behind NAT, which announces its
	// private address and sends from another.
	AnnounceRTP netip.AddrPort
	// HangUpBeforeAck makes the phone give up as the 200 OK reaches it:
	// it sends BYE instead of the ACK, and the call's Wait says so.
	HangUpBeforeAck bool
}

// ErrHungUpBeforeAck is what Wait says of a call whose phone sent BYE
// instead of acknowledging the answer (Options.HangUpBeforeAck).
var ErrHungUpBeforeAck = errors.New("siptest: hung up before the ACK")

// Phone is a SIP user agent that places calls.
type Phone struct {
	opts   Options
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client

	mu       sync.Mutex
	calls    map[string]*Call // by Call-ID
	answered chan *Call       // AnswerDTLS: the calls it answered
	answerAt int              // and the port it answers on
}

// StatusError is a final non-2xx response to an INVITE.
type StatusError struct {
	Code         int
	Reason       string // reason phrase
	ReasonHeader string // the Reason header, if any
	Warning      string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("siptest: INVITE answered %d %s (Reason: %s)", e.Code, e.Reason, e.ReasonHeader)
}

// NewPhone returns a phone bound to opts.LocalIP.
func NewPhone(opts Options) (*Phone, error) {
	if opts.Transport == "" {
		opts.Transport = "udp"
	}
	if opts.LocalIP == "" {
		opts.LocalIP = "127.0.0.1"
	}
	if opts.Codec.Name == "" {
		opts.Codec = sb.PCMU
	}
	if opts.DTMFType == 0 {
		opts.DTMFType = 101
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Phone{opts: opts, calls: map[string]*Call{}}
	var err error
	if p.ua, err = sipgo.NewUA(sipgo.WithUserAgent("siptest"), sipgo.WithUserAgentHostname(opts.LocalIP), sipgo.WithUserAgenTLSConfig(opts.TLSConfig),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(opts.Logger)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(opts.Logger))); err != nil {
		return nil, err
	}
	if p.srv, err = sipgo.NewServer(p.ua, sipgo.WithServerLogger(opts.Logger)); err != nil {
		return nil, err
	}
	if p.client, err = sipgo.NewClient(p.ua, sipgo.WithClientHostname(opts.LocalIP),
		sipgo.WithClientConnectionAddr(net.JoinHostPort(opts.LocalIP, "0")), sipgo.WithClientLogger(opts.Logger)); err != nil {
		return nil, err
	}
	p.srv.OnBye(p.onBye)
	p.srv.OnInvite(p.onReinvite)
	p.srv.OnUpdate(p.onUpdate)
	p.srv.OnAck(p.onAck)
	return p, nil
}

// onAck takes the ACK of a call the phone answered (AnswerDTLS); that of
// a re-INVITE it answered needs nothing.
func (p *Phone) onAck(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	c := p.calls[req.CallID().Value()]
	p.mu.Unlock()
	if c != nil && c.srvDlg != nil {
		c.srvDlg.ReadAck(req, tx)
	}
}

// onReinvite answers the far end's re-INVITE on a call (hold or resume):
// recvonly to sendonly, inactive to inactive (RFC 3264 §6.1), sendrecv
// otherwise. A new call is answered when
// the phone answers calls (AnswerDTLS).
func (p *Phone) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	answering := p.answered
	p.mu.Unlock()
	if to := req.To(); answering != nil && to != nil && !to.Params.Has("tag") {
		p.answerInvite(req, tx, answering)
		return
	}
	c := p.refreshOf(req, tx)
	if c == nil {
		return
	}
	held := strings.Contains(string(req.Body()), "a=sendonly") || strings.Contains(string(req.Body()), "a=inactive")
	dir := "sendrecv"
	switch {
	case strings.Contains(string(req.Body()), "a=inactive"):
		dir = "inactive"
	case held:
		dir = "recvonly"
	}
	c.held.Store(held)
	body := c.sdp(dir)
	if codec := p.opts.ReinviteCodec; codec != nil {
		other := *codec
		other.DTMFType = c.codec.DTMFType
		body = c.sdpOf(c.conn.LocalAddr().(*net.UDPAddr).AddrPort(), dir, other)
	}
	if c.dtls != nil {
		var err error
		if body, err = c.dtls.answer(req.Body()); err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, err.Error(), nil))
			return
		}
	}
	res := sip.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: p.opts.LocalIP}})
	echoTimer(req, res)
	tx.Respond(res)
}

// Close ends the phone's calls and sockets.
func (p *Phone) Close() error {
	p.mu.Lock()
	calls := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		calls = append(calls, c)
	}
	p.mu.Unlock()
	for _, c := range calls {
		c.Close()
	}
	return p.ua.Close()
}

func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	c := p.calls[req.CallID().Value()]
	p.mu.Unlock()
	if c == nil || (c.dlg == nil && c.srvDlg == nil) {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	reason := ""
	if h := req.GetHeader("Reason"); h != nil {
		reason = h.Value()
	}
	if c.srvDlg != nil {
		c.srvDlg.ReadBye(req, tx)
	} else {
		c.dlg.ReadBye(req, tx)
	}
	c.end(reason)
}

// Invite calls to at server (host:port) from from, and returns once the
// call is answered and ACKed. A final non-2xx answer is a *StatusError.
func (p *Phone) Invite(ctx context.Context, server, from, to string) (*Call, error) {
	c, err := p.InviteAsync(ctx, server, from, to)
	if err != nil {
		return nil, err
	}
	if err := c.Wait(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// InviteAsync sends the INVITE and returns at once; Wait gives the
// outcome, Ringing fires on 180, Cancel gives up.
func (p *Phone) InviteAsync(ctx context.Context, server, from, to string) (*Call, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(p.opts.LocalIP), 0)))
	if err != nil {
		return nil, err
	}
	c := &Call{
		phone: p, conn: conn, codec: p.opts.Codec, ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32(),
		ringing: make(chan struct{}), answered: make(chan struct{}), ended: make(chan struct{}),
	}
	c.codec.DTMFType = p.opts.DTMFType
	var body []byte
	if p.opts.DTLS {
		if c.dtls, err = newDTLSMedia(c.codec, p.opts.ICELite, c.received); err != nil {
			conn.Close()
			return nil, err
		}
		if body, err = c.dtls.offer(p.opts.DTLSFingerprint); err != nil {
			c.dtls.pc.Close()
			conn.Close()
			return nil, err
		}
	}
	if p.opts.SRTP != "" {
		profile, ok := srtpProfiles[p.opts.SRTP]
		if !ok {
			conn.Close()
			return nil, fmt.Errorf("siptest: SRTP suite %s not supported", p.opts.SRTP)
		}
		k, _ := profile.KeyLen()
		s, _ := profile.SaltLen()
		c.localKey = make([]byte, k+s)
		crand.Read(c.localKey)
		if c.srtpOut, err = srtpContext(profile, c.localKey); err != nil {
			conn.Close()
			return nil, err
		}
	}
	host, port, err := sip.ParseAddr(server)
	if err != nil {
		conn.Close()
		return nil, err
	}
	recipient := sip.Uri{Scheme: "sip", User: to, Host: host, Port: port}
	if p.opts.Transport != "udp" {
		recipient.UriParams = sip.HeaderParams{}
		recipient.UriParams.Add("transport", p.opts.Transport)
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: p.opts.LocalIP}}
	dua := &sipgo.DialogUA{Client: p.client, ContactHDR: contact}
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetTransport(strings.ToUpper(p.opts.Transport))
	fromParams := sip.NewParams()
	fromParams.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: p.opts.LocalIP}, Params: fromParams})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: to, Host: host}})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	for k, v := range p.opts.Headers {
		req.AppendHeader(sip.NewHeader(k, v))
	}
	if body == nil {
		body = c.sdp("sendrecv")
	}
	req.SetBody(body)

	waitCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	dlg, err := dua.WriteInvite(ctx, req)
	if err != nil {
		cancel()
		conn.Close()
		return nil, err
	}
	c.dlg = dlg
	p.mu.Lock()
	p.calls[req.CallID().Value()] = c
	p.mu.Unlock()
	c.ID = req.CallID().Value()
	go c.waitAnswer(waitCtx)
	return c, nil
}

// Call is one call placed by a phone.
type Call struct {
	ID    string // SIP Call-ID
	phone *Phone
	dlg   *sipgo.DialogClientSession
	conn  *net.UDPConn
	codec sb.Codec

	cancel   context.CancelFunc
	ringing  chan struct{}
	ringOnce sync.Once
	answered chan struct{}
	result   error

	remote atomic.Pointer[netip.AddrPort]
	sink   atomic.Pointer[func([]byte)]
	held   atomic.Bool // the far end put us on hold

	sendMu sync.Mutex
	ssrc   uint32
	seq    uint16
	ts     uint32

	// SRTP, when the phone offers it: our key (in our SDP) encrypts, the
	// answer's decrypts.
	localKey []byte
	srtpMu   sync.Mutex
	srtpOut  *srtp.Context
	srtpIn   *srtp.Context
	forged   atomic.Uint64

	refreshes refreshes // the far end's re-INVITEs and UPDATEs

	dtls   *dtlsMedia                 // a DTLS phone's PeerConnection
	srvDlg *sipgo.DialogServerSession // a call the phone answered (AnswerDTLS)

	endOnce   sync.Once
	ended     chan struct{}
	endReason string
	closeOnce sync.Once
}

func (c *Call) sdp(dir string) []byte {
	if c.dtls != nil {
		return c.dtls.reoffer(dir)
	}
	ap := c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	if a := c.phone.opts.AnnounceRTP; a.IsValid() {
		ap = a
	}
	return c.sdpAt(ap, dir)
}

func (c *Call) sdpAt(ap netip.AddrPort, dir string) []byte { return c.sdpOf(ap, dir, c.codec) }

// sdpOf is the phone's description naming ap and codec.
func (c *Call) sdpOf(ap netip.AddrPort, dir string, codec sb.Codec) []byte {
	proto, crypto := "RTP/AVP", ""
	if c.localKey != nil {
		proto = "RTP/SAVP"
		crypto = fmt.Sprintf("a=crypto:1 %s inline:%s\r\n", c.phone.opts.SRTP, base64.StdEncoding.EncodeToString(c.localKey))
	}
	encoding := codec.Name + "/8000"
	if codec.Name == "opus" {
		encoding = "opus/48000/2"
	}
	return []byte(fmt.Sprintf("v=0\r\no=siptest 1 1 IN IP4 %s\r\ns=siptest\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d %s %d %d\r\na=rtpmap:%d %s\r\na=rtpmap:%d telephone-event/%d\r\na=fmtp:%d 0-16\r\n%sa=ptime:20\r\na=%s\r\n",
		ap.Addr(), ap.Addr(), ap.Port(), proto, codec.PayloadType, codec.DTMFType, codec.PayloadType, encoding,
		codec.DTMFType, codec.ClockRate, codec.DTMFType, crypto, dir))
}

// srtpProfiles are the suites the phone can offer.
var srtpProfiles = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
	"AEAD_AES_128_GCM":        srtp.ProtectionProfileAeadAes128Gcm,
	"AEAD_AES_256_GCM":        srtp.ProtectionProfileAeadAes256Gcm,
}

func srtpContext(profile srtp.ProtectionProfile, keySalt []byte) (*srtp.Context, error) {
	k, _ := profile.KeyLen()
	s, _ := profile.SaltLen()
	if len(keySalt) != k+s {
		return nil, fmt.Errorf("siptest: SRTP key of %d bytes, want %d", len(keySalt), k+s)
	}
	return srtp.CreateContext(keySalt[:k], keySalt[k:], profile)
}

// takeCrypto keys the call's SRTP from the answer's crypto attribute.
func (c *Call) takeCrypto(body []byte) error {
	if c.localKey == nil {
		return nil
	}
	profile := srtpProfiles[c.phone.opts.SRTP]
	var value string
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=crypto:"); ok {
			value = v
		}
	}
	f := strings.Fields(value)
	if len(f) < 3 || f[1] != c.phone.opts.SRTP || !strings.Contains(string(body), "RTP/SAVP") {
		return fmt.Errorf("siptest: the answer to our SRTP offer has no matching crypto: %q", value)
	}
	key, _, _ := strings.Cut(strings.TrimPrefix(f[2], "inline:"), "|")
	keySalt, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return fmt.Errorf("siptest: answer's SRTP key: %w", err)
	}
	in, err := srtpContext(profile, keySalt)
	if err != nil {
		return err
	}
	c.srtpMu.Lock()
	c.srtpIn = in
	c.srtpMu.Unlock()
	return nil
}

// Undecryptable counts SRTP packets that arrived and failed to
// authenticate.
func (c *Call) Undecryptable() uint64 { return c.forged.Load() }

func (c *Call) waitAnswer(ctx context.Context) {
	defer close(c.answered)
	err := c.dlg.WaitAnswer(ctx, sipgo.AnswerOptions{
		Username: c.phone.opts.Username,
		Password: c.phone.opts.Password,
		OnResponse: func(res *sip.Response) error {
			if res.StatusCode == sip.StatusRinging || res.StatusCode == sip.StatusSessionInProgress {
				c.ringOnce.Do(func() { close(c.ringing) })
			}
			return nil
		},
	})
	if res := c.dlg.InviteResponse; res != nil && res.StatusCode >= 300 {
		se := &StatusError{Code: res.StatusCode, Reason: res.Reason}
		if h := res.GetHeader("Reason"); h != nil {
			se.ReasonHeader = h.Value()
		}
		if h := res.GetHeader("Warning"); h != nil {
			se.Warning = h.Value()
		}
		c.result = se
		return
	}
	if err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			c.result = &StatusError{Code: de.Res.StatusCode, Reason: de.Res.Reason}
		} else {
			c.result = err
		}
		return
	}
	if c.phone.opts.HangUpBeforeAck {
		// sipgo sends BYE only on a confirmed dialog: this one is built
		// by hand, to the answer's Contact.
		target := c.dlg.InviteRequest.Recipient
		if ct := c.dlg.InviteResponse.Contact(); ct != nil {
			target = ct.Address
		}
		res, err := c.dlg.Do(ctx, sip.NewRequest(sip.BYE, target))
		switch {
		case err != nil:
			c.result = fmt.Errorf("siptest: BYE before the ACK: %w", err)
		case res.StatusCode != sip.StatusOK:
			c.result = fmt.Errorf("siptest: BYE before the ACK answered %d %s", res.StatusCode, res.Reason)
		default:
			c.result = ErrHungUpBeforeAck
		}
		return
	}
	if err := c.dlg.Ack(ctx); err != nil {
		c.result = fmt.Errorf("siptest: ACK: %w", err)
		return
	}
	if c.dtls != nil && c.phone.opts.DTLSSilent {
		c.dtls.pc.Close()
		return
	}
	if c.dtls != nil {
		if err := c.dtls.answered(c.dlg.InviteResponse.Body()); err != nil {
			c.result = fmt.Errorf("siptest: the answer to our DTLS-SRTP offer: %w", err)
		}
		return
	}
	remote, err := parseAnswer(c.dlg.InviteResponse.Body())
	if err != nil {
		c.result = err
		return
	}
	if err := c.takeCrypto(c.dlg.InviteResponse.Body()); err != nil {
		c.result = err
		return
	}
	c.remote.Store(&remote)
	go c.readLoop()
}

// parseAnswer returns the RTP address of an SDP answer.
func parseAnswer(body []byte) (netip.AddrPort, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return netip.AddrPort{}, fmt.Errorf("siptest: answer SDP: %w", err)
	}
	conn := sd.ConnectionInformation
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		if m.ConnectionInformation != nil {
			conn = m.ConnectionInformation
		}
		if conn == nil || conn.Address == nil {
			break
		}
		ip, err := netip.ParseAddr(conn.Address.Address)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("siptest: answer SDP address: %w", err)
		}
		return netip.AddrPortFrom(ip, uint16(m.MediaName.Port.Value)), nil
	}
	return netip.AddrPort{}, errors.New("siptest: answer SDP has no audio")
}

// Ringing fires when a 180 or 183 arrives.
func (c *Call) Ringing() <-chan struct{} { return c.ringing }

// Wait returns once the INVITE has its outcome: nil when answered, a
// *StatusError for a final non-2xx response.
func (c *Call) Wait(ctx context.Context) error {
	select {
	case <-c.answered:
		return c.result
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Cancel sends CANCEL for an unanswered INVITE and waits for its outcome.
func (c *Call) Cancel(ctx context.Context) error {
	c.cancel()
	select {
	case <-c.answered:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoteRTP is where the call's audio goes.
func (c *Call) RemoteRTP() netip.AddrPort {
	if r := c.remote.Load(); r != nil {
		return *r
	}
	return netip.AddrPort{}
}

// SetSink sets the function that receives every RTP packet that arrives.
func (c *Call) SetSink(fn func(pkt []byte)) { c.sink.Store(&fn) }

func (c *Call) readLoop() {
	buf, plain := make([]byte, 1500), make([]byte, 1500)
	for {
		n, _, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		pkt := buf[:n]
		c.srtpMu.Lock()
		in := c.srtpIn
		c.srtpMu.Unlock()
		if in != nil {
			if pkt, err = in.DecryptRTP(plain[:0], pkt, nil); err != nil {
				c.forged.Add(1)
				continue
			}
		}
		c.received(pkt)
	}
}

// received hands a packet that arrived to the sink.
func (c *Call) received(pkt []byte) {
	if fn := c.sink.Load(); fn != nil && *fn != nil {
		(*fn)(pkt)
	}
}

// SendRTP sends one 20 ms frame of audio in the call's codec.
func (c *Call) SendRTP(payload []byte, marker bool) error {
	c.sendMu.Lock()
	pkt := media.AppendHeader(make([]byte, 0, 12+len(payload)), marker, c.codec.PayloadType, c.seq, c.ts, c.ssrc)
	c.seq++
	c.ts += c.codec.ClockRate / 50
	c.sendMu.Unlock()
	return c.WriteRTP(append(pkt, payload...))
}

// WriteRTP sends a whole RTP packet, protected when the call is SRTP.
func (c *Call) WriteRTP(pkt []byte) error {
	if c.dtls != nil {
		return c.dtls.write(pkt)
	}
	if c.srtpOut != nil {
		c.srtpMu.Lock()
		out, err := c.srtpOut.EncryptRTP(nil, pkt, nil)
		c.srtpMu.Unlock()
		if err != nil {
			return err
		}
		pkt = out
	}
	return c.WriteUnprotected(pkt)
}

// WriteUnprotected sends a packet as it is, even on an SRTP call: what
// an attacker without the key can send.
func (c *Call) WriteUnprotected(pkt []byte) error {
	to := c.remote.Load()
	if to == nil {
		return errors.New("siptest: call not answered")
	}
	_, err := c.conn.WriteToUDPAddrPort(pkt, *to)
	return err
}

// SendDTMF sends digit as RFC 4733 events: three packets while the key is
// down, then the end packet three times.
func (c *Call) SendDTMF(digit byte) error {
	event := strings.IndexByte("0123456789*#ABCD", digit)
	if event < 0 {
		return fmt.Errorf("siptest: %q is not a DTMF key", digit)
	}
	c.sendMu.Lock()
	ts := c.ts
	c.ts += 160 * 6
	c.sendMu.Unlock()
	for i := 0; i < 6; i++ {
		end := i >= 3
		dur := uint16(160 * min(i+1, 4))
		payload := []byte{byte(event), 10, byte(dur >> 8), byte(dur)}
		if end {
			payload[1] |= 0x80
		}
		c.sendMu.Lock()
		pkt := media.AppendHeader(make([]byte, 0, 16), i == 0, c.codec.DTMFType, c.seq, ts, c.ssrc)
		c.seq++
		c.sendMu.Unlock()
		if err := c.WriteRTP(append(pkt, payload...)); err != nil {
			return err
		}
	}
	return nil
}

// Hold sends a re-INVITE with a=sendonly; Resume one with a=sendrecv.
// SendInfo sends an in-dialog INFO (DTMF the SIP INFO way) and returns
// the response code.
func (c *Call) SendInfo(ctx context.Context, contentType, body string) (int, error) {
	res := c.dlg.InviteResponse
	if res == nil || res.Contact() == nil {
		return 0, errors.New("siptest: call not answered")
	}
	req := sip.NewRequest(sip.INFO, res.Contact().Address)
	if contentType != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	req.SetBody([]byte(body))
	reply, err := c.dlg.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("siptest: INFO: %w", err)
	}
	return reply.StatusCode, nil
}

// Held reports whether the far end has put this call on hold.
func (c *Call) Held() bool { return c.held.Load() }

func (c *Call) Hold(ctx context.Context) error   { return c.reinvite(ctx, "sendonly") }
func (c *Call) Resume(ctx context.Context) error { return c.reinvite(ctx, "sendrecv") }

// Inactive makes the call inactive: neither side sends.
func (c *Call) Inactive(ctx context.Context) error { return c.reinvite(ctx, "inactive") }

// MoveMedia sends a re-INVITE whose SDP names to as the phone's RTP
// address (the phone keeps sending from its own socket): media moving to
// another host.
func (c *Call) MoveMedia(ctx context.Context, to netip.AddrPort) error {
	return c.reinviteWith(ctx, c.sdpAt(to, "sendrecv"))
}

func (c *Call) reinvite(ctx context.Context, dir string) error {
	return c.reinviteWith(ctx, c.sdp(dir))
}

func (c *Call) reinviteWith(ctx context.Context, body []byte) error {
	res := c.dlg.InviteResponse
	if res == nil || res.Contact() == nil {
		return errors.New("siptest: call not answered")
	}
	req := sip.NewRequest(sip.INVITE, res.Contact().Address)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	reply, err := c.dlg.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("siptest: re-INVITE: %w", err)
	}
	if reply.StatusCode != sip.StatusOK {
		return &StatusError{Code: reply.StatusCode, Reason: reply.Reason}
	}
	ack := sip.NewRequest(sip.ACK, res.Contact().Address)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
	if err := c.dlg.WriteRequest(ack); err != nil {
		return fmt.Errorf("siptest: ACK re-INVITE: %w", err)
	}
	return nil
}

// Hangup sends BYE and waits for its 200.
func (c *Call) Hangup(ctx context.Context) error {
	err := c.dlg.Bye(ctx)
	c.end("")
	return err
}

// Ended fires when the call ends: BYE from the far end, or Hangup.
func (c *Call) Ended() <-chan struct{} { return c.ended }

// EndReason is the Reason header of the far end's BYE.
func (c *Call) EndReason() string {
	<-c.ended
	return c.endReason
}

func (c *Call) end(reason string) {
	c.endOnce.Do(func() {
		c.endReason = reason
		close(c.ended)
	})
}

// Close releases the call's socket and forgets it.
func (c *Call) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		c.end("")
		if c.conn != nil {
			c.conn.Close()
		}
		if c.dtls != nil {
			c.dtls.pc.Close()
		}
		c.phone.mu.Lock()
		delete(c.phone.calls, c.ID)
		c.phone.mu.Unlock()
		if c.dlg != nil {
			c.dlg.Close()
		}
		if c.srvDlg != nil {
			c.srvDlg.Close()
		}
	})
	return nil
}
