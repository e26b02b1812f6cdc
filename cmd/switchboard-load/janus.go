package main

// The Janus target: the same SIP-side load, with the emulated browsers
// attached to Janus's SIP plugin instead of switchboard. Each emulated
// browser is a Janus session with one janus.plugin.sip handle registered
// (as sip:opN@...) with a registrar (Kamailio, testdata/kamailio/
// registrar.cfg); the trunk's INVITEs go to sip:opN@registrar, and the
// browser (pion) accepts each incoming call with its SDP answer, sends the
// pattern and checks what arrives, as for switchboard. Janus has no
// queues: the load tool hands each call to a free operator itself.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard-voice/switchboard/media"
)

// janusAPI speaks Janus's HTTP API.
type janusAPI struct {
	url    string // e.g. http://127.0.0.1:8088/janus
	client *http.Client
}

type janusReply struct {
	Janus string             `json:"janus"`
	Data  struct{ ID int64 } `json:"data"`
	Error *struct {
		Code   int
		Reason string
	} `json:"error"`
	Sender int64 `json:"sender"`
	Plugin struct {
		Data struct {
			Result struct {
				Event string `json:"event"`
			} `json:"result"`
			Error string `json:"error"`
		} `json:"data"`
	} `json:"plugindata"`
	JSEP *webrtc.SessionDescription `json:"jsep"`
}

func (j *janusAPI) post(ctx context.Context, path string, body map[string]any) (*janusReply, error) {
	body["transaction"] = fmt.Sprintf("t%d", time.Now().UnixNano())
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	res, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("janus: %w", err)
	}
	defer res.Body.Close()
	var r janusReply
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("janus: %w", err)
	}
	if r.Error != nil {
		return nil, fmt.Errorf("janus: %d %s", r.Error.Code, r.Error.Reason)
	}
	return &r, nil
}

// events long-polls a session's events.
func (j *janusAPI) events(ctx context.Context, session int64) ([]janusReply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/%d?maxev=10", j.url, session), nil)
	if err != nil {
		return nil, err
	}
	res, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("janus: %w", err)
	}
	defer res.Body.Close()
	var out []janusReply
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("janus: events: %w", err)
	}
	return out, nil
}

// janusOp is one emulated browser on Janus.
type janusOp struct {
	r       *loadRun
	api     *janusAPI
	webrtc  *webrtc.API
	user    string
	session int64
	handle  int64
	ready   chan error

	mu    sync.Mutex
	in    *stream
	seq   uint32
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	stop  context.CancelFunc
}

func loopbackAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	for _, codec := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000, SDPFmtpLine: "0-16"}, PayloadType: 101},
	} {
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
	se.SetIncludeLoopbackCandidate(true)
	// Janus (libnice) gathers no loopback candidates: the side-by-side run
	// is in a private network namespace whose only other interface is one
	// end of a veth pair with a private address (scripts/bench-janus.sh).
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() || ip.IsPrivate() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// connectJanus makes the emulated browser's session and handle and
// registers it as user with the registrar.
func (r *loadRun) connectJanus(ctx context.Context, api *janusAPI, wapi *webrtc.API, user string) (*janusOp, error) {
	op := &janusOp{r: r, api: api, webrtc: wapi, user: user, ready: make(chan error, 1)}
	rep, err := api.post(ctx, "", map[string]any{"janus": "create"})
	if err != nil {
		return nil, err
	}
	op.session = rep.Data.ID
	if rep, err = api.post(ctx, fmt.Sprintf("/%d", op.session), map[string]any{"janus": "attach", "plugin": "janus.plugin.sip"}); err != nil {
		return nil, err
	}
	op.handle = rep.Data.ID
	go op.serve(ctx)
	if _, err := op.message(ctx, map[string]any{"request": "register", "username": "sip:" + user + "@127.0.0.1",
		"secret": "load", "proxy": "sip:" + r.c.SIPAddr}, nil); err != nil {
		return nil, err
	}
	select {
	case err := <-op.ready:
		return op, err
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("janus: %s did not register", user)
	}
}

func (op *janusOp) message(ctx context.Context, body map[string]any, jsep *webrtc.SessionDescription) (*janusReply, error) {
	msg := map[string]any{"janus": "message", "body": body}
	if jsep != nil {
		msg["jsep"] = jsep
	}
	return op.api.post(ctx, fmt.Sprintf("/%d/%d", op.session, op.handle), msg)
}

// serve follows the session's events: the registration, incoming calls
// (answered after the configured delay), and their ends.
func (op *janusOp) serve(ctx context.Context) {
	for ctx.Err() == nil {
		evs, err := op.api.events(ctx, op.session)
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		for _, ev := range evs {
			if ev.Janus != "event" {
				continue
			}
			switch ev.Plugin.Data.Result.Event {
			case "registered":
				op.ready <- nil
			case "registration_failed":
				op.ready <- errors.New("janus: registration failed")
			case "incomingcall":
				if ev.JSEP != nil {
					go op.accept(ctx, *ev.JSEP)
				}
			case "hangup":
				op.hangup()
			}
		}
	}
}

// accept answers Janus's offer for an incoming call and talks.
func (op *janusOp) accept(ctx context.Context, offer webrtc.SessionDescription) {
	if d := op.r.c.AnswerDelay; d > 0 {
		time.Sleep(d)
	}
	pc, err := op.webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "load")
	if err == nil {
		_, err = pc.AddTrack(track)
	}
	s := &stream{}
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			if p.PayloadType == 0 {
				s.add(p.Payload, time.Now())
			}
		}
	})
	var answer webrtc.SessionDescription
	if err == nil {
		err = pc.SetRemoteDescription(offer)
	}
	if err == nil {
		answer, err = pc.CreateAnswer(nil)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err == nil {
		err = pc.SetLocalDescription(answer)
	}
	if err != nil {
		pc.Close()
		return
	}
	<-gathered
	callCtx, stop := context.WithCancel(ctx)
	op.mu.Lock()
	op.pc, op.track, op.in, op.stop = pc, track, s, stop
	op.mu.Unlock()
	if _, err := op.message(ctx, map[string]any{"request": "accept"}, pc.LocalDescription()); err != nil {
		op.hangup()
		return
	}
	op.r.mu.Lock()
	op.r.toOperator = append(op.r.toOperator, s)
	op.r.mu.Unlock()
	if op.r.c.Media {
		go op.talk(callCtx, track)
	}
}

func (op *janusOp) talk(ctx context.Context, track *webrtc.TrackLocalStaticRTP) {
	buf := make([]byte, 160)
	tick := time.NewTicker(frame)
	defer tick.Stop()
	var seq uint16
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			op.seq++
			seq++
			p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160},
				Payload: media.PatternFrame(buf, op.seq, time.Now())}
			if track.WriteRTP(p) == nil {
				op.r.sentToCaller.Add(1)
			}
		}
	}
}

func (op *janusOp) hangup() {
	op.mu.Lock()
	pc, stop := op.pc, op.stop
	op.pc, op.stop, op.in = nil, nil, nil
	op.mu.Unlock()
	if stop != nil {
		stop()
	}
	if pc != nil {
		pc.Close()
	}
}

// idle waits (a little) for the browser's last call to be over on its
// side too, so that the next call finds it free.
func (op *janusOp) idle() {
	for range 100 {
		op.mu.Lock()
		busy := op.pc != nil
		op.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (op *janusOp) close() {
	op.hangup()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	op.api.post(ctx, fmt.Sprintf("/%d", op.session), map[string]any{"janus": "destroy"})
}

// janusUser is the SIP user of the nth emulated browser.
func janusUser(n int) string { return fmt.Sprintf("op%d", n) }

// isJanus reports whether the run drives Janus.
func (c *config) isJanus() bool { return strings.EqualFold(c.Target, "janus") }
