package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	sb "github.com/switchboard-voice/switchboard"
)

// Limits and timings of the operator socket.
const (
	maxFrame     = 64 << 10         // read limit per message
	sendQueue    = 64               // messages queued for a client before it counts as too slow
	writeTimeout = 10 * time.Second // one message to the client
	pingEvery    = 30 * time.Second // keep-alive, so idle NATs and proxies keep the socket
	pongTimeout  = 15 * time.Second
	offerTimeout = 15 * time.Second // making the PeerConnection's offer
	drainTimeout = 2 * time.Second  // flushing queued messages before the close frame
	claimTimeout = 5 * time.Second  // waiting for a replaced socket to let go
)

// Close codes of the operator socket beyond the standard ones.
const statusReplaced websocket.StatusCode = 4000 // a newer socket of the same operator took over

// clientMessage is anything an operator client sends; Type says which
// fields matter.
type clientMessage struct {
	Type      string           `json:"type"`
	SDP       string           `json:"sdp,omitempty"`
	Candidate *sb.ICECandidate `json:"candidate,omitempty"`
	CallID    string           `json:"call_id,omitempty"`
	Muted     *bool            `json:"muted,omitempty"`
	Given     *bool            `json:"given,omitempty"`
	Stats     *browserStats    `json:"stats,omitempty"`
	Number    string           `json:"number,omitempty"`
	Held      *bool            `json:"held,omitempty"`
	To        string           `json:"to_operator_id,omitempty"`
	ToQueue   string           `json:"to_queue_id,omitempty"`
	ToURI     string           `json:"to_uri,omitempty"`
	Paused    *bool            `json:"paused,omitempty"`
}

type msgHeld struct {
	Type   string `json:"type"`
	CallID sb.ID  `json:"call_id"`
	Held   bool   `json:"held"`
}

// browserStats is what the operator's browser says about the audio it
// receives on its call (its inbound-rtp and candidate-pair stats).
type browserStats struct {
	PacketsReceived uint64  `json:"packets_received"`
	PacketsLost     int64   `json:"packets_lost"`
	JitterMS        float64 `json:"jitter_ms"`
	RTTMS           float64 `json:"rtt_ms"`
}

// sample checks the numbers a browser sent: they are somebody else's.
func (b *browserStats) sample() (sb.QualitySample, error) {
	if b == nil || b.PacketsReceived > 1<<40 || b.PacketsLost < -(1<<40) || b.PacketsLost > 1<<40 ||
		!(b.JitterMS >= 0 && b.JitterMS < 1e6) || !(b.RTTMS >= 0 && b.RTTMS < 1e6) {
		return sb.QualitySample{}, sb.Errorf(sb.EINVALID, "stats needs packets_received, packets_lost, jitter_ms and rtt_ms in range")
	}
	return sb.QualitySample{Packets: b.PacketsReceived, Lost: b.PacketsLost, JitterMS: b.JitterMS, RTTMS: b.RTTMS}, nil
}

// decodeClientMessage parses one frame, refusing what is not a JSON object
// with a type.
func decodeClientMessage(data []byte) (clientMessage, error) {
	var m clientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return clientMessage{}, sb.Errorf(sb.EINVALID, "a message must be a JSON object with a type")
	}
	if m.Type == "" {
		return clientMessage{}, sb.Errorf(sb.EINVALID, "the message has no type")
	}
	return m, nil
}

// operators tracks each operator's current socket.
type operators struct {
	mu    sync.Mutex
	conns map[sb.ID]*opConn
}

func newOperators() *operators { return &operators{conns: map[sb.ID]*opConn{}} }

// claim makes c its operator's current socket. An older socket is closed
// first, and claim waits until call control has forgotten it, so that its
// Disconnected cannot undo the new socket's Available.
func (o *operators) claim(ctx context.Context, c *opConn) error {
	for range 3 {
		o.mu.Lock()
		old := o.conns[c.user.ID]
		if old == nil {
			o.conns[c.user.ID] = c
			o.mu.Unlock()
			return nil
		}
		o.mu.Unlock()
		old.sendError("", sb.Errorf(sb.ECONFLICT, "replaced by a newer connection"))
		old.shutdown(statusReplaced, "replaced by a newer connection")
		t := time.NewTimer(claimTimeout)
		select {
		case <-old.released:
			t.Stop()
		case <-t.C:
			return sb.Errorf(sb.EUNAVAILABLE, "the previous connection is still closing; try again")
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return sb.Errorf(sb.ECONFLICT, "too many connections for this operator at once")
}

// remove forgets c and reports whether it was the operator's current
// socket.
func (o *operators) remove(c *opConn) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conns[c.user.ID] != c {
		return false
	}
	delete(o.conns, c.user.ID)
	return true
}

// closeUser closes the user's socket, if any (at logout).
func (o *operators) closeUser(id sb.ID, reason string) {
	o.mu.Lock()
	c := o.conns[id]
	o.mu.Unlock()
	if c != nil {
		c.shutdown(websocket.StatusNormalClosure, reason)
	}
}

// opConn is one operator socket; it is the switchboard.OperatorConn call
// control talks to. The handler's goroutine owns its teardown; one
// goroutine reads, one writes, one pings.
type opConn struct {
	s     *Server
	ws    *websocket.Conn
	user  *sb.User
	log   *slog.Logger
	media MediaSession // set before reading starts; nil if it could not be made
	// from is the socket's request, for where audit entries come from.
	from *http.Request
	// maskNumbers shows the operator only the last digits of callers'
	// numbers: the tenant's minimisation setting when the socket opened.
	maskNumbers bool
	// budget is what the socket may ask: the API's rate, per socket (a
	// person with several sockets has a budget on each). told: when the
	// client was last told it is over (at most once a second).
	budget *rate.Limiter
	told   time.Time

	send        chan []byte
	quit        chan struct{} // closed by shutdown: the socket is ending
	quitOnce    sync.Once
	released    chan struct{} // closed once call control has forgotten the socket
	cancelOffer context.CancelFunc
	closeCode   websocket.StatusCode // written once, before quit closes
	closeReason string

	// regMu orders Available against teardown, so that a socket cannot
	// register with call control after it has been forgotten.
	regMu   sync.Mutex
	closing bool

	mu         sync.Mutex
	mediaState string
	wantCalls  bool // asked to be available before the audio connected
	registered bool
	offerSent  bool
	earlyCands []sb.ICECandidate // server candidates gathered before the offer went out
	// offered are the calls offered to (or placed by) this socket lately,
	// newest last: the calls whose caller it may be shown.
	offered []sb.ID
}

var _ sb.OperatorConn = (*opConn)(nil)

func (c *opConn) OperatorID() sb.ID   { return c.user.ID }
func (c *opConn) TenantID() sb.ID     { return c.user.TenantID }
func (c *opConn) Media() sb.MediaPort { return c.media.Media() }

// Offer shows an incoming call. It fails when the socket is closing, so
// call control moves on at once.
func (c *opConn) Offer(o sb.CallOffer) error {
	c.remember(o.CallID)
	if c.maskNumbers {
		o.From, o.To = sb.MaskNumber(o.From), sb.MaskNumber(o.To)
	}
	return c.enqueue(msgIncoming{Type: "incoming", Call: o, RingTimeoutMS: c.s.conf.RingTimeout.Milliseconds()})
}

func (c *opConn) Revoke(callID sb.ID, reason string) {
	c.enqueue(msgCall{Type: "revoked", CallID: callID, Reason: c.reason(reason)})
}

func (c *opConn) Connected(callID sb.ID) {
	c.enqueue(msgCall{Type: "connected", CallID: callID, Codec: c.Media().Codec().Name})
}

func (c *opConn) Ended(callID sb.ID, reason string) {
	c.enqueue(msgCall{Type: "ended", CallID: callID, Reason: c.reason(reason)})
}

// reason is why a call ended or was withdrawn, as the operator may see
// it: the call record's reason, which a far end's reason phrase or an
// error can make quote a number, masked as the record's is.
func (c *opConn) reason(r string) string {
	if c.maskNumbers {
		return sb.MaskReason(r)
	}
	return r
}

func (c *opConn) StateChanged(available bool, reason string) {
	c.enqueue(msgState{Type: "state", Available: available, Reason: reason})
}

func (c *opConn) Held(callID sb.ID, held bool) {
	c.enqueue(msgHeld{Type: "held", CallID: callID, Held: held})
}

// RecordingState shows the operator where their call's recording stands.
func (c *opConn) RecordingState(callID sb.ID, v sb.RecordingView) {
	c.enqueue(msgRecording{Type: "recording", CallID: callID, RecordingView: v})
}

var _ sb.RecordingNotifier = (*opConn)(nil)

// Move tells the page to reconnect, to another instance, and closes the
// socket with 1012 (service restart).
func (c *opConn) Move(reason string) {
	c.enqueue(msgMoving{Type: "moving", Reason: reason})
	c.shutdown(websocket.StatusServiceRestart, reason)
}

// Server → client messages.
type (
	msgHello struct {
		Type       string         `json:"type"`
		Operator   helloOperator  `json:"operator"`
		ICEServers []sb.ICEServer `json:"ice_servers"`
		// CanDial says the tenant has an outbound route: the page offers
		// a dial form and "call back".
		CanDial bool `json:"can_dial"`
	}
	helloOperator struct {
		ID       sb.ID  `json:"id"`
		Email    string `json:"email"`
		Name     string `json:"name"`
		TenantID sb.ID  `json:"tenant_id"`
	}
	msgOffer struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	}
	msgCandidate struct {
		Type      string          `json:"type"`
		Candidate sb.ICECandidate `json:"candidate"`
	}
	msgState struct {
		Type      string `json:"type"`
		Available bool   `json:"available"`
		Reason    string `json:"reason"`
	}
	msgIncoming struct {
		Type          string       `json:"type"`
		Call          sb.CallOffer `json:"call"`
		RingTimeoutMS int64        `json:"ring_timeout_ms"`
	}
	msgMoving struct {
		Type   string `json:"type"` // moving
		Reason string `json:"reason"`
	}
	msgCall struct {
		Type   string `json:"type"`
		CallID sb.ID  `json:"call_id"`
		Reason string `json:"reason,omitempty"`
		// Codec is what the page sends for the call ("connected"):
		// "PCMU", "PCMA" or "opus".
		Codec string `json:"codec,omitempty"`
	}
	msgMuted struct {
		Type   string `json:"type"`
		CallID sb.ID  `json:"call_id"`
		Muted  bool   `json:"muted"`
	}
	msgError struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Ref     string `json:"ref"`
	}
	msgType struct {
		Type string `json:"type"`
	}
)

// sendError tells the client a request failed. Internal detail is logged,
// not sent.
func (c *opConn) sendError(ref string, err error) {
	code, msg := sb.ErrorCode(err), sb.ErrorMessage(err)
	if code == sb.EINTERNAL {
		c.log.Error("operator request failed", "request", ref, "err", err)
	}
	c.enqueue(msgError{Type: "error", Code: code, Message: msg, Ref: ref})
}

// enqueue queues a message without blocking. A client too slow to take its
// messages is disconnected.
func (c *opConn) enqueue(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	select {
	case <-c.quit:
		return sb.Errorf(sb.EUNAVAILABLE, "the operator's connection is closing")
	default:
	}
	select {
	case c.send <- b:
		return nil
	default:
		c.shutdown(websocket.StatusPolicyViolation, "client too slow")
		return sb.Errorf(sb.EUNAVAILABLE, "the operator's connection is too slow")
	}
}

// shutdown asks for the socket to close with code and reason; the first
// request wins. It never blocks: the handler's goroutine does the work.
func (c *opConn) shutdown(code websocket.StatusCode, reason string) {
	c.quitOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.quit)
		c.cancelOffer()
	})
}

// operatorSocket is GET /v1/operator/ws.
func (s *Server) operatorSocket(w http.ResponseWriter, r *http.Request) {
	if err := checkOrigin(r); err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.operator(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	// Accept checks the Origin again, as a second line.
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug("operator socket upgrade", "err", err)
		return
	}
	ws.SetReadLimit(maxFrame)
	ctx := r.Context()
	offerCtx, cancelOffer := context.WithTimeout(ctx, offerTimeout)
	defer cancelOffer()
	c := &opConn{
		s: s, ws: ws, user: u, log: s.log.With("operator", u.ID), from: r,
		send: make(chan []byte, sendQueue), quit: make(chan struct{}), released: make(chan struct{}),
		cancelOffer: cancelOffer, maskNumbers: s.masksCallers(r.Context(), u.TenantID, u.Role),
		budget: rate.NewLimiter(apiRate, socketBurst),
	}
	c.run(ctx, offerCtx)
}

// checkOrigin refuses a browser socket opened by another site. Clients
// that send no Origin (not browsers) are let through; the session cookie
// still authenticates them.
func checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || !strings.EqualFold(u.Host, r.Host) {
		return sb.Errorf(sb.EFORBIDDEN, "cross-site operator sockets are not allowed")
	}
	return nil
}

// operator authenticates the socket: only a browser login (the session
// cookie), of a role that takes calls.
func (s *Server) operator(r *http.Request) (*sb.User, error) {
	a, err := s.sessionActor(r)
	if err != nil {
		return nil, err
	}
	switch a.Role {
	case sb.RoleOperator, sb.RoleSupervisor, sb.RoleAdmin:
	default:
		return nil, sb.Errorf(sb.EFORBIDDEN, "role %s cannot take calls", a.Role)
	}
	return s.deps.Users.FindUserByID(sb.NewContextWithActor(r.Context(), a), a.UserID)
}

// run serves the socket until it ends, then tears it down: call control
// forgets the operator, the PeerConnection closes, queued messages are
// flushed, and the close frame carries the reason.
func (c *opConn) run(ctx, offerCtx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()

	if c.s.deps.CallControl.Draining() {
		c.log.Info("operator socket refused: draining")
		if b, err := json.Marshal(msgMoving{Type: "moving", Reason: "this instance is shutting down"}); err == nil {
			if err := c.write(ctx, b, writeTimeout); err != nil {
				c.log.Debug("operator socket refusal", "err", err)
			}
		}
		c.closeNow(websocket.StatusServiceRestart, "this instance is shutting down")
		return
	}
	if err := c.s.ops.claim(ctx, c); err != nil {
		// No writer runs yet: say why directly.
		c.log.Info("operator socket refused", "err", err)
		if b, jerr := json.Marshal(msgError{Type: "error", Code: sb.ErrorCode(err), Message: sb.ErrorMessage(err)}); jerr == nil {
			if werr := c.write(ctx, b, writeTimeout); werr != nil {
				c.log.Debug("operator socket refusal", "err", werr)
			}
		}
		c.closeNow(websocket.StatusTryAgainLater, "try again")
		return
	}
	c.log.Info("operator connected")

	writerDone := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(writerDone)
		c.writeLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		c.keepAlive(ctx)
	}()

	c.enqueue(msgHello{Type: "hello", ICEServers: c.s.iceServers(), CanDial: c.canDial(ctx), Operator: helloOperator{
		ID: c.user.ID, Email: c.user.Email, Name: c.user.Name, TenantID: c.user.TenantID,
	}})
	if err := c.startMedia(offerCtx); err != nil {
		c.sendError("", err)
		c.shutdown(websocket.StatusInternalError, "no audio connection")
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.readLoop(ctx)
		}()
	}

	select {
	case <-c.quit:
	case <-ctx.Done():
		c.shutdown(websocket.StatusGoingAway, "server shutting down")
	}
	c.release()
	<-writerDone
	// Closing unblocks the reader and the pinger.
	c.closeNow(c.closeCode, c.closeReason)
	c.log.Info("operator disconnected", "reason", c.closeReason)
}

// closeNow sends the close frame and waits (bounded by the library) for
// the client's.
func (c *opConn) closeNow(code websocket.StatusCode, reason string) {
	if err := c.ws.Close(code, reason); err != nil {
		c.log.Debug("operator socket close", "err", err)
	}
}

// release makes call control forget the socket, if it is still the
// operator's current one, and closes the PeerConnection.
func (c *opConn) release() {
	defer close(c.released)
	c.regMu.Lock()
	c.closing = true
	c.regMu.Unlock()
	if c.s.ops.remove(c) {
		c.s.deps.CallControl.Disconnected(c.user.ID)
	}
	if c.media != nil {
		if err := c.media.Close(); err != nil {
			c.log.Warn("operator media close", "err", err)
		}
	}
}

// startMedia makes the shift's PeerConnection and sends its offer.
func (c *opConn) startMedia(ctx context.Context) error {
	m, err := c.s.deps.MediaSessions.NewMediaSession()
	if err != nil {
		return sb.Errorf(sb.EUNAVAILABLE, "no audio connection can be made now: %v", sb.ErrorMessage(err))
	}
	c.media = m
	m.OnICECandidate(c.localCandidate)
	m.OnConnectionStateChange(c.mediaStateChanged)
	sdp, err := m.CreateOffer(ctx)
	if err != nil {
		c.log.Error("operator offer", "err", err)
		return sb.Errorf(sb.EUNAVAILABLE, "no audio offer could be made")
	}
	if err := c.enqueue(msgOffer{Type: "offer", SDP: sdp}); err != nil {
		return err
	}
	c.mu.Lock()
	c.offerSent = true
	early := c.earlyCands
	c.earlyCands = nil
	c.mu.Unlock()
	for _, cand := range early {
		c.enqueue(msgCandidate{Type: "candidate", Candidate: cand})
	}
	return nil
}

// localCandidate trickles a server candidate, holding it back until the
// offer has gone out so a client never sees a candidate before the offer.
func (c *opConn) localCandidate(cand sb.ICECandidate) {
	c.mu.Lock()
	if !c.offerSent {
		c.earlyCands = append(c.earlyCands, cand)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.enqueue(msgCandidate{Type: "candidate", Candidate: cand})
}

// mediaStateChanged follows the PeerConnection: a pending "available" is
// taken once it connects; a failed or closed one ends the socket, which
// makes the operator away (the client reconnects with a new one).
func (c *opConn) mediaStateChanged(state string) {
	if state == "connected" && c.reattach() {
		c.mu.Lock()
		c.mediaState, c.wantCalls = state, false
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	c.mediaState = state
	pending := state == "connected" && c.wantCalls
	if pending {
		c.wantCalls = false
	}
	c.mu.Unlock()
	if pending {
		if err := c.register(); err != nil {
			c.sendError("available", err)
		}
	}
	if state == "failed" || state == "closed" {
		c.sendError("", sb.Errorf(sb.EUNAVAILABLE, "the audio connection %s", state))
		c.shutdown(websocket.StatusGoingAway, "audio connection "+state)
	}
}

func (c *opConn) writeLoop(ctx context.Context) {
	for {
		select {
		case b := <-c.send:
			if err := c.write(ctx, b, writeTimeout); err != nil {
				c.shutdown(websocket.StatusGoingAway, "write failed")
				return
			}
		case <-c.quit:
			// Flush what is queued (an error saying why, say) before the
			// close frame.
			deadline := time.Now().Add(drainTimeout)
			for {
				select {
				case b := <-c.send:
					if err := c.write(ctx, b, time.Until(deadline)); err != nil {
						return
					}
				default:
					return
				}
			}
		}
	}
}

func (c *opConn) write(ctx context.Context, b []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// keepAlive pings the client; one that does not answer is disconnected.
func (c *opConn) keepAlive(ctx context.Context) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, pongTimeout)
			err := c.ws.Ping(pctx)
			cancel()
			if err != nil {
				c.shutdown(websocket.StatusGoingAway, "no pong")
				return
			}
			if c.disabled(ctx) {
				c.shutdown(websocket.StatusPolicyViolation, "account disabled")
				return
			}
		case <-c.quit:
			return
		}
	}
}

// disabled reports whether the operator was disabled or removed. Every
// instance closes a disabled person's socket when told (SignedOut); this
// check, with each ping, closes it should the notice have been missed.
func (c *opConn) disabled(ctx context.Context) bool {
	self := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: c.user.TenantID, UserID: c.user.ID, Role: c.user.Role})
	u, err := c.s.deps.Users.FindUserByID(self, c.user.ID)
	if err != nil {
		return sb.ErrorCode(err) == sb.ENOTFOUND
	}
	return u.Disabled
}

func (c *opConn) readLoop(ctx context.Context) {
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			c.shutdown(websocket.StatusNormalClosure, "")
			return
		}
		if !c.budget.Allow() {
			// Dropped unread; the client is told at most once a second.
			if now := time.Now(); now.Sub(c.told) >= time.Second {
				c.told = now
				c.enqueue(msgError{Type: "error", Code: "rate_limited", Message: "too many messages: those over 20 a second are dropped"})
			}
			continue
		}
		if typ != websocket.MessageText {
			c.sendError("", sb.Errorf(sb.EINVALID, "messages are JSON text frames"))
			continue
		}
		m, err := decodeClientMessage(data)
		if err != nil {
			c.sendError("", err)
			continue
		}
		if err := c.request(ctx, m); err != nil {
			c.sendError(m.Type, err)
		}
	}
}

// handle does one client request.
func (c *opConn) handle(ctx context.Context, m clientMessage) error {
	cc := c.s.deps.CallControl
	id := c.user.ID
	switch m.Type {
	case "answer":
		if m.SDP == "" {
			return sb.Errorf(sb.EINVALID, "answer message without an sdp")
		}
		return c.media.SetAnswer(m.SDP)
	case "candidate":
		if m.Candidate == nil {
			return sb.Errorf(sb.EINVALID, "candidate message without a candidate")
		}
		return c.media.AddICECandidate(*m.Candidate)
	case "available":
		c.mu.Lock()
		state := c.mediaState
		switch state {
		case "connected":
		case "failed", "closed":
			c.mu.Unlock()
			return sb.Errorf(sb.EINVALID, "the audio connection has %s; reconnect first", state)
		default:
			// Taken once the audio connects; a state message says so.
			c.wantCalls = true
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		return c.register()
	case "away":
		c.mu.Lock()
		c.wantCalls = false
		registered := c.registered
		c.mu.Unlock()
		cc.Away(id)
		if !registered {
			// Call control does not know this socket, so it says nothing.
			c.StateChanged(false, "")
		}
		return nil
	case "ping":
		return c.enqueue(msgType{Type: "pong"})
	case "dial":
		callID, err := cc.Dial(id, m.Number)
		if err != nil {
			return err
		}
		c.remember(callID)
		return c.enqueue(msgCall{Type: "dialing", CallID: callID})
	case "accept", "decline", "hangup", "mute", "consent", "stats", "hold", "transfer", "recording":
		callID, err := sb.ParseID(m.CallID)
		if err != nil {
			return sb.Errorf(sb.EINVALID, "call_id %q is not a call id", truncate(m.CallID, 64))
		}
		switch m.Type {
		case "accept":
			return cc.Accept(id, callID)
		case "decline":
			return cc.Decline(id, callID)
		case "hangup":
			return cc.Hangup(id, callID)
		case "transfer":
			t, err := transferTarget(m.To, m.ToQueue, m.ToURI)
			if err != nil {
				return err
			}
			if t.QueueID != nil {
				if err := c.listedQueue(ctx, *t.QueueID); err != nil {
					return err
				}
			}
			if t.URI == "" {
				return cc.TransferCall(id, callID, t) // within the tenant: on the call's timeline
			}
			// A call sent out of the tenant's operators is audited first, as
			// an integration's transfer is.
			a := &sb.Actor{TenantID: c.user.TenantID, UserID: c.user.ID, Role: c.user.Role}
			return c.s.auditFirst(c.from, a, "call.transfer", "call", callID, func() error { return cc.TransferCall(id, callID, t) })
		case "hold":
			if m.Held == nil {
				return sb.Errorf(sb.EINVALID, "hold needs held: true or false")
			}
			if err := cc.Hold(id, callID, *m.Held); err != nil {
				return err
			}
			return c.enqueue(msgHeld{Type: "held", CallID: callID, Held: *m.Held})
		case "recording":
			if m.Paused == nil {
				return sb.Errorf(sb.EINVALID, "recording needs paused: true or false")
			}
			if !c.wasOffered(callID) {
				// Not this operator's call: nothing to audit, nothing done.
				return sb.Errorf(sb.ENOTFOUND, "no such call for this operator")
			}
			// A pause changes what is kept of the caller's voice: audited
			// as consent is, and as the API's pause is.
			a := &sb.Actor{TenantID: c.user.TenantID, UserID: c.user.ID, Role: c.user.Role}
			return c.s.auditRecordingChange(c.from, a, pauseAction(*m.Paused), *m.Paused, callID, func() error { return cc.OperatorPause(id, callID, *m.Paused) })
		case "stats":
			q, err := m.Stats.sample()
			if err != nil {
				return err
			}
			return cc.OperatorStats(id, callID, q)
		case "consent":
			if m.Given == nil {
				return sb.Errorf(sb.EINVALID, "consent needs given: true or false")
			}
			if !c.wasOffered(callID) {
				// Not this operator's call: nothing to audit, nothing done.
				return sb.Errorf(sb.ENOTFOUND, "no such call for this operator")
			}
			action := "consent.give"
			if !*m.Given {
				action = "consent.withdraw"
			}
			a := &sb.Actor{TenantID: c.user.TenantID, UserID: c.user.ID, Role: c.user.Role}
			return c.s.auditRecordingChange(c.from, a, action, !*m.Given, callID, func() error { return cc.OperatorConsent(id, callID, *m.Given) })
		}
		if m.Muted == nil {
			return sb.Errorf(sb.EINVALID, "mute needs muted: true or false")
		}
		if err := cc.Mute(id, callID, *m.Muted); err != nil {
			return err
		}
		return c.enqueue(msgMuted{Type: "muted", CallID: callID, Muted: *m.Muted})
	}
	return sb.Errorf(sb.EINVALID, "unknown message type %q", truncate(m.Type, 64))
}

// register makes the operator available to call control, unless the
// socket is already being torn down.
// reattach takes back the call the operator was on when their last
// connection dropped, if there is one: the page is told the call
// ("resumed"), then call control bridges it to this connection's audio.
func (c *opConn) reattach() bool {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	if c.closing {
		return false
	}
	ok := c.s.deps.CallControl.Reattach(c, func(o sb.CallOffer) {
		c.remember(o.CallID)
		if c.maskNumbers {
			o.From, o.To = sb.MaskNumber(o.From), sb.MaskNumber(o.To)
		}
		c.enqueue(msgIncoming{Type: "resumed", Call: o})
	})
	if ok {
		c.mu.Lock()
		c.registered = true
		c.mu.Unlock()
		c.log.Info("operator back on their call")
	}
	return ok
}

func (c *opConn) register() error {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	if c.closing {
		return sb.Errorf(sb.EUNAVAILABLE, "the connection is closing")
	}
	if err := c.s.deps.CallControl.Available(c); err != nil {
		return err
	}
	c.mu.Lock()
	c.registered = true
	c.mu.Unlock()
	return nil
}

func (s *Server) iceServers() []sb.ICEServer {
	if s.conf.ICEServers == nil {
		return []sb.ICEServer{}
	}
	return s.conf.ICEServers
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
