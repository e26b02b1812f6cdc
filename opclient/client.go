// Package opclient is a Go operator client speaking
// docs/operator-protocol.md: log in, open the operator socket and the
// shift's PeerConnection (pion), go available, take calls, send and
// receive audio. End-to-end tests and the load tool use it.
package opclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
)

// HTTPError is a failed HTTP request, with the API's error body.
type HTTPError struct {
	Status  int
	Code    string
	Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("opclient: HTTP %d: %s (%s)", e.Status, e.Message, e.Code)
}

// ProtocolError is an error message from the server in reply to a request.
type ProtocolError struct {
	Code, Message, Ref string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("opclient: %s refused: %s (%s)", e.Ref, e.Message, e.Code)
}

// Event is one message from the server.
type Event struct {
	Type      string           `json:"type"`
	CallID    sb.ID            `json:"call_id"`
	Reason    string           `json:"reason"`
	Available bool             `json:"available"`
	Held      bool             `json:"held"`
	Code      string           `json:"code"`
	Message   string           `json:"message"`
	Ref       string           `json:"ref"`
	SDP       string           `json:"sdp"`
	Candidate *sb.ICECandidate `json:"candidate"`
	Call      *sb.CallOffer    `json:"call"`
	RingMS    int64            `json:"ring_timeout_ms"`
	ICE       []sb.ICEServer   `json:"ice_servers"`
	Codec     string           `json:"codec"`    // the call's, in "connected"
	CanDial   bool             `json:"can_dial"` // in "hello"
	// State, Consent and Paused are where the call's recording stands
	// ("recording").
	State   string `json:"state"`
	Consent string `json:"consent"`
	Paused  bool   `json:"paused"`
	// The desk's answers: "caller", "recent" and "directory".
	Caller    *sb.CallerInfo  `json:"caller"`
	Calls     []sb.RecentCall `json:"calls"`
	Operators []sb.Colleague  `json:"operators"`
	Queues    []sb.QueueEntry `json:"queues"`
}

// Incoming is a call offered to the operator.
type Incoming struct {
	CallID      sb.ID
	From, To    string
	Channel     string // the messenger the call is from or to; "" for a phone call
	RingTimeout time.Duration
}

// Option tunes a client.
type Option func(*Client)

// WithLoopbackOnly gathers 127.0.0.1 ICE candidates only, for tests and
// load runs on one machine.
func WithLoopbackOnly() Option { return func(c *Client) { c.loopback = true } }

// WithoutOpus leaves Opus out of the client's answer, as an old softphone
// would: the service then offers it G.711 calls only.
func WithoutOpus() Option { return func(c *Client) { c.noOpus = true } }

// Client is one logged-in operator.
type Client struct {
	base     *url.URL
	http     *http.Client
	loopback bool
	noOpus   bool

	ws    *websocket.Conn
	pc    *webrtc.PeerConnection
	track *track

	ctx    context.Context
	cancel context.CancelFunc

	incoming chan Incoming
	events   chan Event

	mu      sync.Mutex
	history []Event
	changed chan struct{} // closed and replaced when history grows

	candMu     sync.Mutex
	answerSent bool
	pending    []map[string]any

	canDial bool // the tenant has an outbound route (hello)

	sink    atomic.Pointer[func(*rtp.Packet)]
	sendMu  sync.Mutex
	seq     uint16
	ts      uint32
	lastTx  time.Time
	closeMu sync.Once
}

// Login logs in at baseURL (http://host:port) and returns a client that
// holds the session cookie.
func Login(ctx context.Context, baseURL, email, password string, opts ...Option) (*Client, error) {
	base, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("opclient: base url: %w", err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second},
		incoming: make(chan Incoming, 16), events: make(chan Event, 256), changed: make(chan struct{}),
		seq: uint16(rand.Uint32()), ts: rand.Uint32()}
	for _, o := range opts {
		o(c)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.JoinPath("/v1/login").String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("opclient: login: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		he := &HTTPError{Status: res.StatusCode}
		var eb struct{ Code, Message string }
		if json.NewDecoder(res.Body).Decode(&eb) == nil {
			he.Code, he.Message = eb.Code, eb.Message
		}
		return nil, he
	}
	return c, nil
}

func (c *Client) api() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	codecs := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}, PayloadType: 8},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000, SDPFmtpLine: "0-16"}, PayloadType: 101},
	}
	if !c.noOpus {
		codecs = append(codecs, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
			ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111})
	}
	for _, codec := range codecs {
		if err := m.RegisterCodec(codec, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if c.loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// Connect opens the operator socket, answers the server's offer and
// returns once the PeerConnection is connected.
func (c *Client) Connect(ctx context.Context) error {
	u := *c.base
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	ws, _, err := websocket.Dial(ctx, u.JoinPath("/v1/operator/ws").String(), &websocket.DialOptions{HTTPClient: c.http})
	if err != nil {
		return fmt.Errorf("opclient: socket: %w", err)
	}
	ws.SetReadLimit(1 << 20)
	c.ws = ws
	var hello Event
	if err := c.read(ctx, &hello); err != nil {
		return err
	}
	if hello.Type == "moving" {
		return fmt.Errorf("opclient: %w (%s)", ErrMoving, hello.Reason)
	}
	if hello.Type != "hello" {
		return fmt.Errorf("opclient: first message is %q, want hello", hello.Type)
	}
	c.canDial = hello.CanDial
	api, err := c.api()
	if err != nil {
		return err
	}
	var ice []webrtc.ICEServer
	for _, s := range hello.ICE {
		ice = append(ice, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	if c.pc, err = api.NewPeerConnection(webrtc.Configuration{ICEServers: ice}); err != nil {
		return fmt.Errorf("opclient: peer connection: %w", err)
	}
	c.track = &track{codec: "PCMU"}
	sender, err := c.pc.AddTrack(c.track)
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	c.pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			if fn := c.sink.Load(); fn != nil && *fn != nil {
				(*fn)(p)
			}
		}
	})
	c.pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		init := cand.ToJSON()
		msg := map[string]any{"type": "candidate", "candidate": sb.ICECandidate{Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex}}
		// Candidates go after the answer: gathering starts before it is sent.
		c.candMu.Lock()
		if !c.answerSent {
			c.pending = append(c.pending, msg)
			c.candMu.Unlock()
			return
		}
		c.candMu.Unlock()
		c.write(msg)
	})
	connected := make(chan struct{})
	var once sync.Once
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	go c.readLoop()
	select {
	case <-connected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("opclient: PeerConnection not connected: %w", ctx.Err())
	case <-c.ctx.Done():
		return errors.New("opclient: socket closed while connecting")
	}
}

func (c *Client) read(ctx context.Context, ev *Event) error {
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		return fmt.Errorf("opclient: read: %w", err)
	}
	if err := json.Unmarshal(data, ev); err != nil {
		return fmt.Errorf("opclient: message: %w", err)
	}
	return nil
}

func (c *Client) write(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

func (c *Client) readLoop() {
	defer c.cancel()
	for {
		var ev Event
		if err := c.read(c.ctx, &ev); err != nil {
			return
		}
		switch ev.Type {
		case "offer":
			if err := c.answer(ev.SDP); err != nil {
				return
			}
			continue
		case "candidate":
			if ev.Candidate != nil {
				c.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: ev.Candidate.Candidate, SDPMid: ev.Candidate.SDPMid, SDPMLineIndex: ev.Candidate.SDPMLineIndex})
			}
			continue
		case "connected":
			if ev.Codec != "" {
				c.track.use(ev.Codec) // before anyone waiting for it sends
			}
		case "incoming":
			if ev.Call != nil {
				ev.CallID = ev.Call.CallID
				select {
				case c.incoming <- Incoming{CallID: ev.Call.CallID, From: ev.Call.From, To: ev.Call.To, Channel: ev.Call.Channel, RingTimeout: time.Duration(ev.RingMS) * time.Millisecond}:
				default:
				}
			}
		}
		c.mu.Lock()
		c.history = append(c.history, ev)
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
		select {
		case c.events <- ev:
		default:
		}
	}
}

func (c *Client) answer(offer string) error {
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return err
	}
	ans, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := c.pc.SetLocalDescription(ans); err != nil {
		return err
	}
	if err := c.write(map[string]any{"type": "answer", "sdp": c.pc.LocalDescription().SDP}); err != nil {
		return err
	}
	c.candMu.Lock()
	pending := c.pending
	c.pending, c.answerSent = nil, true
	c.candMu.Unlock()
	for _, msg := range pending {
		if err := c.write(msg); err != nil {
			return err
		}
	}
	return nil
}

// waitFor waits for an event after position from that satisfies match.
func (c *Client) waitFor(ctx context.Context, from int, match func(Event) (bool, error)) error {
	for {
		c.mu.Lock()
		hist, changed := c.history, c.changed
		c.mu.Unlock()
		for _, ev := range hist[min(from, len(hist)):] {
			if ok, err := match(ev); ok || err != nil {
				return err
			}
		}
		from = len(hist)
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return errors.New("opclient: socket closed")
		}
	}
}

func (c *Client) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.history)
}

// request sends msg and waits for an event that confirms it, or an error
// message about it.
func (c *Client) request(ctx context.Context, msg map[string]any, done func(Event) bool) error {
	from := c.mark()
	if err := c.write(msg); err != nil {
		return err
	}
	ref := msg["type"].(string)
	return c.waitFor(ctx, from, func(ev Event) (bool, error) {
		if ev.Type == "error" && ev.Ref == ref {
			return true, &ProtocolError{Code: ev.Code, Message: ev.Message, Ref: ev.Ref}
		}
		return done != nil && done(ev), nil
	})
}

// Transfer hands the call to another operator; the client gets "ended"
// for it once it is handed over.
func (c *Client) Transfer(ctx context.Context, callID, toOperatorID sb.ID) error {
	return c.request(ctx, map[string]any{"type": "transfer", "call_id": callID, "to_operator_id": toOperatorID},
		func(ev Event) bool { return ev.Type == "ended" && ev.CallID == callID })
}

// TransferToQueue hands the call to one of the tenant's queues, whose
// members are offered it.
func (c *Client) TransferToQueue(ctx context.Context, callID, queueID sb.ID) error {
	return c.request(ctx, map[string]any{"type": "transfer", "call_id": callID, "to_queue_id": queueID},
		func(ev Event) bool { return ev.Type == "ended" && ev.CallID == callID })
}

// TransferToURI hands the call to a SIP URI, which switchboard calls and
// bridges.
func (c *Client) TransferToURI(ctx context.Context, callID sb.ID, uri string) error {
	return c.request(ctx, map[string]any{"type": "transfer", "call_id": callID, "to_uri": uri},
		func(ev Event) bool { return ev.Type == "ended" && ev.CallID == callID })
}

// Hold puts the caller on hold, or takes them off.
func (c *Client) Hold(ctx context.Context, callID sb.ID, held bool) error {
	return c.request(ctx, map[string]any{"type": "hold", "call_id": callID, "held": held},
		func(ev Event) bool { return ev.Type == "held" && ev.CallID == callID })
}

// Dial places a call to number and returns its ID once the service has
// started it; WaitConnected and WaitEnded follow it.
func (c *Client) Dial(ctx context.Context, number string) (sb.ID, error) {
	var id sb.ID
	err := c.request(ctx, map[string]any{"type": "dial", "number": number}, func(ev Event) bool {
		if ev.Type == "dialing" {
			id = ev.CallID
			return true
		}
		return false
	})
	return id, err
}

// SetAvailable asks for calls and waits until the server says so.
func (c *Client) SetAvailable(ctx context.Context) error {
	return c.request(ctx, map[string]any{"type": "available"}, func(ev Event) bool { return ev.Type == "state" && ev.Available })
}

// SetAway stops offers.
func (c *Client) SetAway(ctx context.Context) error {
	return c.request(ctx, map[string]any{"type": "away"}, func(ev Event) bool { return ev.Type == "state" && !ev.Available })
}

// Incoming delivers offered calls.
func (c *Client) Incoming() <-chan Incoming { return c.incoming }

// Events delivers every message from the server (dropping when nobody
// reads).
func (c *Client) Events() <-chan Event { return c.events }

// Accept answers a call and waits until it is bridged.
func (c *Client) Accept(ctx context.Context, callID sb.ID) error {
	return c.request(ctx, map[string]any{"type": "accept", "call_id": callID},
		func(ev Event) bool {
			return (ev.Type == "connected" || ev.Type == "ended" || ev.Type == "revoked") && ev.CallID == callID
		})
}

// Decline declines an offered call.
func (c *Client) Decline(ctx context.Context, callID sb.ID) error {
	return c.write(map[string]any{"type": "decline", "call_id": callID})
}

// Hangup ends the current call and waits for the server to confirm.
func (c *Client) Hangup(ctx context.Context, callID sb.ID) error {
	return c.request(ctx, map[string]any{"type": "hangup", "call_id": callID},
		func(ev Event) bool { return ev.Type == "ended" && ev.CallID == callID })
}

// Mute records on the call that the operator muted or unmuted. The
// client stops sending audio itself.
func (c *Client) Mute(ctx context.Context, callID sb.ID, muted bool) error {
	return c.request(ctx, map[string]any{"type": "mute", "call_id": callID, "muted": muted},
		func(ev Event) bool { return ev.Type == "muted" && ev.CallID == callID })
}

// Consent records that the operator confirmed recording consent on the
// call (or that the caller refused it).
func (c *Client) Consent(ctx context.Context, callID sb.ID, given bool) error {
	return c.write(map[string]any{"type": "consent", "call_id": callID, "given": given})
}

// CanDial reports whether the service offered this operator a dial form
// (the tenant has an outbound route) when the socket opened.
func (c *Client) CanDial() bool { return c.canDial }

// PauseRecording pauses (or resumes) the recording of the call; the
// service confirms with a "recording" message (WaitRecording).
func (c *Client) PauseRecording(ctx context.Context, callID sb.ID, paused bool) error {
	return c.write(map[string]any{"type": "recording", "call_id": callID, "paused": paused})
}

// WaitRecording waits until the latest word of the service on the call's
// recording is state ("recording", "paused", "not recorded") with a pause
// standing or not, and returns it.
func (c *Client) WaitRecording(ctx context.Context, callID sb.ID, state string, paused bool) (Event, error) {
	for {
		c.mu.Lock()
		hist, changed := c.history, c.changed
		c.mu.Unlock()
		var last *Event
		for i := range hist {
			if hist[i].Type == "recording" && hist[i].CallID == callID {
				last = &hist[i]
			}
		}
		if last != nil && last.State == state && last.Paused == paused {
			return *last, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-c.ctx.Done():
			return Event{}, errors.New("opclient: socket closed")
		}
	}
}

// Caller asks who calls on a call offered to the operator.
func (c *Client) Caller(ctx context.Context, callID sb.ID) (*sb.CallerInfo, error) {
	var info *sb.CallerInfo
	err := c.request(ctx, map[string]any{"type": "caller", "call_id": callID}, func(ev Event) bool {
		if ev.Type == "caller" && ev.Caller != nil && ev.Caller.CallID == callID {
			info = ev.Caller
			return true
		}
		return false
	})
	return info, err
}

// Recent lists the calls that reached the operator, newest first.
func (c *Client) Recent(ctx context.Context) ([]sb.RecentCall, error) {
	var calls []sb.RecentCall
	err := c.request(ctx, map[string]any{"type": "recent"}, func(ev Event) bool {
		if ev.Type != "recent" {
			return false
		}
		calls = ev.Calls
		return true
	})
	return calls, err
}

// Directory lists the operator's colleagues, with their state, and the
// tenant's queues: whom a call can be handed to.
func (c *Client) Directory(ctx context.Context) ([]sb.Colleague, []sb.QueueEntry, error) {
	var (
		ops []sb.Colleague
		qs  []sb.QueueEntry
	)
	err := c.request(ctx, map[string]any{"type": "directory"}, func(ev Event) bool {
		if ev.Type != "directory" {
			return false
		}
		ops, qs = ev.Operators, ev.Queues
		return true
	})
	return ops, qs, err
}

// WaitRefused waits for the service to refuse a request of type ref (an
// "error" message naming it) and returns the refusal.
func (c *Client) WaitRefused(ctx context.Context, ref string) (*ProtocolError, error) {
	var pe *ProtocolError
	err := c.waitFor(ctx, 0, func(ev Event) (bool, error) {
		if ev.Type == "error" && ev.Ref == ref {
			pe = &ProtocolError{Code: ev.Code, Message: ev.Message, Ref: ev.Ref}
			return true, nil
		}
		return false, nil
	})
	return pe, err
}

// WaitConnected waits until the call is bridged.
func (c *Client) WaitConnected(ctx context.Context, callID sb.ID) error {
	return c.waitFor(ctx, 0, func(ev Event) (bool, error) {
		if ev.Type == "ended" && ev.CallID == callID {
			return true, fmt.Errorf("opclient: call ended before it connected: %s", ev.Reason)
		}
		return ev.Type == "connected" && ev.CallID == callID, nil
	})
}

// WaitFreed waits until the service says the operator is free again
// after the call: a "state" saying available that follows the call's
// "connected". It comes as the call ends, before its record is written.
func (c *Client) WaitFreed(ctx context.Context, callID sb.ID) error {
	connected := false
	return c.waitFor(ctx, 0, func(ev Event) (bool, error) {
		connected = connected || (ev.Type == "connected" && ev.CallID == callID)
		return connected && ev.Type == "state" && ev.Available, nil
	})
}

// WaitRevoked waits until the offer of the call is withdrawn.
func (c *Client) WaitRevoked(ctx context.Context, callID sb.ID) error {
	return c.waitFor(ctx, 0, func(ev Event) (bool, error) { return ev.Type == "revoked" && ev.CallID == callID, nil })
}

// WaitEnded waits until the call is over and returns why.
func (c *Client) WaitEnded(ctx context.Context, callID sb.ID) (string, error) {
	var reason string
	err := c.waitFor(ctx, 0, func(ev Event) (bool, error) {
		if ev.Type == "ended" && ev.CallID == callID {
			reason = ev.Reason
			return true, nil
		}
		return false, nil
	})
	return reason, err
}

// WaitHeld waits until the service says the call is on hold (or not, as
// held asks): in reply to Hold, or after a reconnect.
func (c *Client) WaitHeld(ctx context.Context, callID sb.ID, held bool) error {
	return c.waitFor(ctx, 0, func(ev Event) (bool, error) {
		return ev.Type == "held" && ev.CallID == callID && ev.Held == held, nil
	})
}

// ErrMoving is the refusal of an instance that is draining: connect to
// another.
var ErrMoving = errors.New("the instance is draining; connect to another")

// WaitMoving waits until the service moves the operator off a draining
// instance (the socket closes after) and returns what it said.
func (c *Client) WaitMoving(ctx context.Context) (string, error) {
	moving := func() (string, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ev := range c.history {
			if ev.Type == "moving" {
				return ev.Reason, true
			}
		}
		return "", false
	}
	err := c.waitFor(ctx, 0, func(ev Event) (bool, error) { return ev.Type == "moving", nil })
	if reason, ok := moving(); ok {
		return reason, nil // also when the close came first to waitFor
	}
	return "", err
}

// SetAudioSink sets the function that receives the call audio; nil stops.
func (c *Client) SetAudioSink(fn func(*rtp.Packet)) { c.sink.Store(&fn) }

// SendAudio sends one 20 ms frame in the call's codec (the last
// "connected" named it; PCMU before any call).
func (c *Client) SendAudio(payload []byte) error {
	pt, rate := c.track.current()
	frame := rate / 50
	c.sendMu.Lock()
	now := time.Now()
	if !c.lastTx.IsZero() && now.Sub(c.lastTx) > 100*time.Millisecond {
		c.ts += uint32(now.Sub(c.lastTx).Milliseconds())*(rate/1000) - frame // a pause keeps real time
	}
	c.lastTx = now
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: c.seq, Timestamp: c.ts}, Payload: payload}
	c.seq++
	c.ts += frame
	c.sendMu.Unlock()
	return c.track.writeRTP(p)
}

// Codec is the codec the client sends in: the last call's.
func (c *Client) Codec() string {
	c.track.mu.RLock()
	defer c.track.mu.RUnlock()
	return c.track.codec
}

// track is the client's audio track: it sends each packet with its own
// payload type, so one stream carries a G.711 call and then an Opus one,
// as the page's RTCRtpSender does when told the call's codec.
type track struct {
	mu     sync.RWMutex
	ws     webrtc.TrackLocalWriter
	ssrc   webrtc.SSRC
	codecs map[string]webrtc.RTPCodecParameters // negotiated, by name
	codec  string
}

func (t *track) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codecs := map[string]webrtc.RTPCodecParameters{}
	for _, p := range ctx.CodecParameters() {
		name := strings.TrimPrefix(p.MimeType, "audio/")
		if strings.EqualFold(name, "opus") {
			name = "opus"
		} else {
			name = strings.ToUpper(name)
		}
		if _, ok := codecs[name]; !ok {
			codecs[name] = p
		}
	}
	first, ok := codecs["PCMU"]
	if !ok {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.mu.Lock()
	t.ws, t.ssrc, t.codecs = ctx.WriteStream(), ctx.SSRC(), codecs
	t.mu.Unlock()
	return first, nil
}

func (t *track) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	t.ws = nil
	t.mu.Unlock()
	return nil
}

func (t *track) ID() string                { return "audio" }
func (t *track) RID() string               { return "" }
func (t *track) StreamID() string          { return "operator" }
func (t *track) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// use switches to the named codec, when it was negotiated.
func (t *track) use(name string) {
	t.mu.Lock()
	if _, ok := t.codecs[name]; ok {
		t.codec = name
	}
	t.mu.Unlock()
}

// current is the payload type and clock rate of the codec in use.
func (t *track) current() (uint8, uint32) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if p, ok := t.codecs[t.codec]; ok {
		return uint8(p.PayloadType), p.ClockRate
	}
	return 0, 8000
}

func (t *track) writeRTP(p *rtp.Packet) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.ws == nil {
		return nil // not negotiated yet
	}
	p.SSRC = uint32(t.ssrc)
	_, err := t.ws.WriteRTP(&p.Header, p.Payload)
	return err
}

// Done is closed when the socket has ended, by the service or by Close.
func (c *Client) Done() <-chan struct{} { return c.ctx.Done() }

// Close ends the socket and the PeerConnection.
func (c *Client) Close() error {
	var err error
	c.closeMu.Do(func() {
		if c.ws != nil {
			c.ws.Close(websocket.StatusNormalClosure, "bye")
		}
		c.cancel()
		if c.pc != nil {
			err = c.pc.Close()
		}
	})
	return err
}
