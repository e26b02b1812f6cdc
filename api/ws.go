package api

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	sb "github.com/switchboard-voice/switchboard"
)

// Limits of the operator socket.
const (
	maxFrame     = 64 << 10
	sendQueue    = 64
	writeTimeout = 10 * time.Second
	pingEvery    = 30 * time.Second
)

// clientMessage is anything an operator client sends; Type says which
// fields matter.
type clientMessage struct {
	Type      string           `json:"type"`
	SDP       string           `json:"sdp,omitempty"`
	Candidate *sb.ICECandidate `json:"candidate,omitempty"`
	CallID    string           `json:"call_id,omitempty"`
	Muted     *bool            `json:"muted,omitempty"`
}

// decodeClientMessage parses one frame, refusing what is not a JSON object
// with a type.
func decodeClientMessage(data []byte) (clientMessage, error) {
	var m clientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return m, sb.Errorf(sb.EINVALID, "a message must be a JSON object with a type")
	}
	if m.Type == "" {
		return m, sb.Errorf(sb.EINVALID, "the message has no type")
	}
	return m, nil
}

// operators tracks each operator's current socket: a newer one replaces
// an older one.
type operators struct {
	mu    sync.Mutex
	conns map[sb.ID]*opConn
}

func newOperators() *operators { return &operators{conns: map[sb.ID]*opConn{}} }

func (o *operators) replace(c *opConn) *opConn {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.conns[c.user.ID]
	o.conns[c.user.ID] = c
	return old
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

func (o *operators) closeUser(id sb.ID, reason string) {
	o.mu.Lock()
	c := o.conns[id]
	o.mu.Unlock()
	if c != nil {
		c.shutdown(websocket.StatusNormalClosure, reason)
	}
}

// opConn is one operator socket; it is the switchboard.OperatorConn call
// control talks to.
type opConn struct {
	s     *Server
	ws    *websocket.Conn
	user  *sb.User
	media MediaSession

	ctx    context.Context
	cancel context.CancelFunc
	send   chan []byte
	done   chan struct{}
	prev   *opConn // the socket this one replaced

	mu          sync.Mutex
	mediaState  string
	wantCalls   bool // asked to be available before the audio connected
	registered  bool
	closeCode   websocket.StatusCode
	closeReason string
}

var _ sb.OperatorConn = (*opConn)(nil)

func (c *opConn) OperatorID() sb.ID   { return c.user.ID }
func (c *opConn) TenantID() sb.ID     { return c.user.TenantID }
func (c *opConn) Media() sb.MediaPort { return c.media.Media() }
func (c *opConn) Connected(callID sb.ID) {
	c.enqueue(map[string]any{"type": "connected", "call_id": callID})
}

func (c *opConn) Offer(o sb.CallOffer) error {
	c.enqueue(map[string]any{"type": "incoming", "call": o, "ring_timeout_ms": c.s.conf.RingTimeout.Milliseconds()})
	return c.ctx.Err()
}

func (c *opConn) Revoke(callID sb.ID, reason string) {
	c.enqueue(map[string]any{"type": "revoked", "call_id": callID, "reason": reason})
}

func (c *opConn) Ended(callID sb.ID, reason string) {
	c.enqueue(map[string]any{"type": "ended", "call_id": callID, "reason": reason})
}

func (c *opConn) StateChanged(available bool, reason string) {
	c.enqueue(map[string]any{"type": "state", "available": available, "reason": reason})
}

func (c *opConn) sendError(ref string, err error) {
	code, msg := sb.ErrorCode(err), sb.ErrorMessage(err)
	if code == sb.EINTERNAL {
		c.s.log.Error("operator request failed", "request", ref, "err", err)
	}
	c.enqueue(map[string]any{"type": "error", "code": code, "message": msg, "ref": ref})
}

// enqueue queues a message without blocking; a client too slow to take
// its messages is disconnected.
func (c *opConn) enqueue(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.s.log.Error("operator message", "err", err)
		return
	}
	select {
	case c.send <- b:
	case <-c.ctx.Done():
	default:
		c.shutdown(websocket.StatusPolicyViolation, "client too slow")
	}
}

// shutdown closes the socket with a code and reason.
func (c *opConn) shutdown(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	first := c.closeCode == 0
	if first {
		c.closeCode, c.closeReason = code, reason
	}
	c.mu.Unlock()
	if first {
		// Closing the socket ends the read loop, which cleans up.
		go c.ws.Close(code, reason)
	}
}

func (c *opConn) writeLoop() {
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case b := <-c.send:
			ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				c.cancel()
				return
			}
		case <-ping.C:
			go func() {
				ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
				defer cancel()
				if err := c.ws.Ping(ctx); err != nil {
					c.cancel()
				}
			}()
		case <-c.ctx.Done():
			return
		}
	}
}

// operatorSocket is GET /v1/operator/ws.
func (s *Server) operatorSocket(w http.ResponseWriter, r *http.Request) {
	a, err := s.actor(r)
	if err == nil && a.UserID == (sb.ID{}) {
		err = sb.Errorf(sb.EFORBIDDEN, "the operator socket needs a person's login, not an API key")
	}
	if err == nil && a.Role != sb.RoleOperator && a.Role != sb.RoleSupervisor && a.Role != sb.RoleAdmin {
		err = sb.Errorf(sb.EFORBIDDEN, "role %s cannot take calls", a.Role)
	}
	var u *sb.User
	if err == nil {
		u, err = s.deps.Users.FindUserByID(sb.NewContextWithActor(r.Context(), a), a.UserID)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	// Accept refuses a cross-site Origin with 403.
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(maxFrame)
	ctx, cancel := context.WithCancel(r.Context())
	c := &opConn{s: s, ws: ws, user: u, ctx: ctx, cancel: cancel, send: make(chan []byte, sendQueue), done: make(chan struct{})}
	defer close(c.done)
	if old := s.ops.replace(c); old != nil {
		old.shutdown(4000, "replaced by a newer connection")
		c.prev = old
	}
	log := s.log.With("operator", u.ID)
	log.Info("operator connected")
	go c.writeLoop()
	defer c.close(log)

	c.enqueue(map[string]any{"type": "hello", "ice_servers": s.iceServers(),
		"operator": map[string]any{"id": u.ID, "email": u.Email, "name": u.Name, "tenant_id": u.TenantID}})
	if c.media, err = s.deps.MediaSessions.NewMediaSession(); err != nil {
		log.Error("operator media session", "err", err)
		c.shutdown(websocket.StatusInternalError, "no media session")
		return
	}
	c.media.OnICECandidate(func(cand sb.ICECandidate) { c.enqueue(map[string]any{"type": "candidate", "candidate": cand}) })
	c.media.OnConnectionStateChange(func(state string) {
		c.mu.Lock()
		c.mediaState = state
		pending := state == "connected" && c.wantCalls
		c.wantCalls = false
		c.mu.Unlock()
		if pending {
			if err := c.register(); err != nil {
				c.sendError("available", err)
			}
		}
		if state == "failed" || state == "closed" {
			c.shutdown(websocket.StatusGoingAway, "audio connection "+state)
		}
	})
	sdp, err := c.media.CreateOffer(ctx)
	if err != nil {
		log.Error("operator offer", "err", err)
		c.shutdown(websocket.StatusInternalError, "no media offer")
		return
	}
	c.enqueue(map[string]any{"type": "offer", "sdp": sdp})
	c.readLoop()
}

func (s *Server) iceServers() []sb.ICEServer {
	if s.conf.ICEServers == nil {
		return []sb.ICEServer{}
	}
	return s.conf.ICEServers
}

func (c *opConn) readLoop() {
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			return
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
		if err := c.handle(m); err != nil {
			c.sendError(m.Type, err)
		}
	}
}

func (c *opConn) handle(m clientMessage) error {
	cc := c.s.deps.CallControl
	id := c.user.ID
	switch m.Type {
	case "answer":
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
		case "", "new", "connecting":
			// Taken once the audio connects; the state message says so.
			c.wantCalls = true
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		if state != "connected" {
			return sb.Errorf(sb.EINVALID, "the audio connection is %s; reconnect first", state)
		}
		return c.register()
	case "away":
		cc.Away(id)
		return nil
	case "ping":
		c.enqueue(map[string]any{"type": "pong"})
		return nil
	case "accept", "decline", "hangup", "mute":
		callID, err := sb.ParseID(m.CallID)
		if err != nil {
			return sb.Errorf(sb.EINVALID, "call_id %q is not a call id", m.CallID)
		}
		switch m.Type {
		case "accept":
			return cc.Accept(id, callID)
		case "decline":
			return cc.Decline(id, callID)
		case "hangup":
			return cc.Hangup(id, callID)
		}
		if m.Muted == nil {
			return sb.Errorf(sb.EINVALID, "mute needs muted: true or false")
		}
		if err := cc.Mute(id, callID, *m.Muted); err != nil {
			return err
		}
		c.enqueue(map[string]any{"type": "muted", "call_id": callID, "muted": *m.Muted})
		return nil
	}
	return sb.Errorf(sb.EINVALID, "unknown message type %q", m.Type)
}

// close ends the socket: call control forgets the operator (a call in
// progress is hung up), the PeerConnection closes.
func (c *opConn) close(log interface{ Info(string, ...any) }) {
	c.cancel()
	if c.s.ops.remove(c) || c.isRegistered() {
		c.s.deps.CallControl.Disconnected(c.user.ID)
	}
	if c.media != nil {
		c.media.Close()
	}
	c.mu.Lock()
	code, reason := c.closeCode, c.closeReason
	c.mu.Unlock()
	if code == 0 {
		code = websocket.StatusNormalClosure
	}
	c.ws.Close(code, reason)
	log.Info("operator disconnected", "reason", reason)
}

// register makes the operator available to call control.
func (c *opConn) register() error {
	if c.prev != nil {
		// The replaced socket must have left call control first.
		select {
		case <-c.prev.done:
		case <-time.After(5 * time.Second):
		}
	}
	if err := c.s.deps.CallControl.Available(c); err != nil {
		return err
	}
	c.mu.Lock()
	c.registered = true
	c.mu.Unlock()
	return nil
}

func (c *opConn) isRegistered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.registered
}
