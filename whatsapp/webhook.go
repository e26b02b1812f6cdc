package whatsapp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// maxWebhookBody bounds a webhook's body: an event carries one SDP of a
// few kilobytes.
const maxWebhookBody = 64 << 10

// handleTimeout bounds what one webhook request does (our answer's ICE
// gathering, pre_accept).
const handleTimeout = 10 * time.Second

// payload is a WhatsApp Business Account webhook as Meta posts it; only
// the calls field is read.
type payload struct {
	Object string `json:"object"`
	Entry  []struct {
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				Metadata struct {
					PhoneNumberID string `json:"phone_number_id"`
				} `json:"metadata"`
				Calls    []callEvent   `json:"calls"`
				Statuses []statusEvent `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

// callEvent is a connect (a user's offer, or the user's answer to ours)
// or a terminate.
type callEvent struct {
	ID        string   `json:"id"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Event     string   `json:"event"`
	Direction string   `json:"direction"`
	Timestamp string   `json:"timestamp"`
	Status    string   `json:"status"`
	Session   *session `json:"session"`
	Errors    []struct {
		Code int `json:"code"`
	} `json:"errors"`
}

// statusEvent is how a call we place stands: RINGING, ACCEPTED, REJECTED.
type statusEvent struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Timestamp string `json:"timestamp"`
}

// ServeWebhook answers Meta for the connection: GET is the subscription
// handshake, POST an event signed with the app secret. A request that
// fails its check changes nothing.
func (s *Service) ServeWebhook(w http.ResponseWriter, r *http.Request, connID sb.ID) {
	conn, sec, err := s.dir.WhatsAppByID(r.Context(), connID)
	if err != nil {
		if sb.ErrorCode(err) == sb.ENOTFOUND {
			s.count(resultUnknownConnection)
			http.Error(w, "no such connection", http.StatusNotFound)
			return
		}
		s.log.Error("whatsapp connection", "connection", connID, "err", err)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.handshake(w, r, sec)
	case http.MethodPost:
		s.event(w, r, conn, sec)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// handshake is Meta's subscription check: the verify token we gave must
// come back, and the challenge is echoed.
func (s *Service) handshake(w http.ResponseWriter, r *http.Request, sec *sb.WhatsAppSecrets) {
	q := r.URL.Query()
	token := sha256.Sum256([]byte(q.Get("hub.verify_token")))
	challenge := q.Get("hub.challenge")
	if q.Get("hub.mode") != "subscribe" || subtle.ConstantTimeCompare(token[:], sec.VerifyHash) != 1 ||
		challenge == "" || len(challenge) > 200 {
		s.count(resultHandshakeRefused)
		http.Error(w, "verification failed", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	io.WriteString(w, challenge)
}

// validSignature checks X-Hub-Signature-256: HMAC-SHA256 of the raw body
// with the app secret, compared in constant time.
func validSignature(header string, body []byte, appSecret string) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func (s *Service) event(w http.ResponseWriter, r *http.Request, conn *sb.WhatsAppConnection, sec *sb.WhatsAppSecrets) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	if !validSignature(r.Header.Get("X-Hub-Signature-256"), body, sec.AppSecret) {
		s.count(resultBadSignature)
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil || p.Object != "whatsapp_business_account" {
		s.count(resultMalformed)
		http.Error(w, "not a WhatsApp Business Account event", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), handleTimeout)
	defer cancel()
	for _, e := range p.Entry {
		for _, ch := range e.Changes {
			if ch.Field != "calls" {
				continue
			}
			if ch.Value.Metadata.PhoneNumberID != conn.PhoneNumberID {
				s.count(resultForeignNumber)
				continue
			}
			for _, c := range ch.Value.Calls {
				s.callEvent(ctx, conn, sec, c)
			}
			for _, st := range ch.Value.Statuses {
				if st.Type == "call" {
					s.statusEvent(ctx, conn, st)
				}
			}
		}
	}
	w.WriteHeader(http.StatusOK)
}

// fresh reports whether an event is new: neither seen before nor older
// than what is remembered (a replay after we forgot it).
func (s *Service) fresh(key, timestamp string) bool {
	if ts, err := strconv.ParseInt(timestamp, 10, 64); err == nil && s.now().Sub(time.Unix(ts, 0)) > seenFor-time.Minute {
		return false
	}
	return s.firstSight(key)
}

func (s *Service) callEvent(ctx context.Context, conn *sb.WhatsAppConnection, sec *sb.WhatsAppSecrets, c callEvent) {
	if c.ID == "" || len(c.ID) > maxCallID {
		s.count(resultMalformed)
		return
	}
	sdpType := ""
	if c.Session != nil {
		sdpType = c.Session.SDPType
	}
	if !s.fresh(strings.Join([]string{"call", conn.ID.String(), c.ID, c.Event, sdpType, c.Status}, "|"), c.Timestamp) {
		s.count(resultReplay)
		return
	}
	switch {
	case c.Event == "connect" && sdpType == "offer" && c.Direction == "USER_INITIATED":
		s.incoming(ctx, conn, sec, c)
	case c.Event == "connect" && sdpType == "answer":
		s.answered(ctx, conn, c)
	case c.Event == "terminate":
		s.terminated(ctx, conn, c)
	default:
		s.count(resultMalformed)
	}
}

// incoming is a user's call: our peer answers their offer, pre_accept
// carries our answer at once (so the media connects while operators are
// rung), and call control takes the call like any other.
func (s *Service) incoming(ctx context.Context, conn *sb.WhatsAppConnection, sec *sb.WhatsAppSecrets, c callEvent) {
	g := s.graph(conn, sec)
	from, err := userNumber(c.From)
	if err != nil || c.Session.SDP == "" {
		s.count(resultMalformed)
		return
	}
	peer, answer, err := s.answer(ctx, c.Session.SDP)
	if err != nil {
		s.log.Warn("whatsapp offer refused", "connection", conn.ID, "whatsapp_call_id", c.ID, "err", err)
		if err := g.act(ctx, c.ID, "reject", ""); err != nil {
			s.log.Warn("whatsapp reject", "whatsapp_call_id", c.ID, "err", err)
		}
		s.count(resultAccepted)
		return
	}
	leg := &userLeg{Peer: peer, svc: s, graph: g, conn: conn.ID, id: c.ID, answer: answer}
	if !s.keep(&call{leg: leg}) {
		peer.Close() // the live call with this ID is not this one's to end
		s.count(resultReplay)
		return
	}
	if err := g.act(ctx, c.ID, "pre_accept", answer); err != nil {
		s.log.Warn("whatsapp pre_accept", "connection", conn.ID, "whatsapp_call_id", c.ID, "err", err)
		leg.Close() // rejects the call
		s.count(resultAccepted)
		return
	}
	s.count(resultAccepted)
	s.dispatch(&sb.InboundCall{
		Trunk:       &sb.Trunk{ID: conn.ID, TenantID: conn.TenantID, Name: conn.Name},
		From:        from,
		To:          conn.Number,
		Source:      "whatsapp:" + conn.PhoneNumberID,
		Leg:         leg,
		ExternalRef: c.ID,
		Channel:     sb.ChannelWhatsApp,
	})
}

// userNumber reads a WhatsApp user's number (digits, as the webhooks
// give it) as E.164.
func userNumber(s string) (string, error) {
	_, n, err := sb.DialTarget(sb.ChannelWhatsApp + ":" + s)
	return n, err
}

// answered is the user's answer to a call we place: the media connects,
// and then the call is answered.
func (s *Service) answered(ctx context.Context, conn *sb.WhatsAppConnection, c callEvent) {
	lc := s.await(ctx, conn.ID, c.ID)
	if lc == nil || !lc.outbound {
		s.count(resultUnknownCall)
		return
	}
	s.count(resultAccepted)
	peer, ok := lc.leg.Peer.(OfferingPeer)
	if !ok {
		return
	}
	if err := peer.SetAnswer(c.Session.SDP); err != nil {
		lc.leg.Emit(sb.LegEvent{Kind: sb.LegFailed, Code: 488, Reason: "the WhatsApp user's answer could not be taken: " + err.Error()})
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := peer.Answer(s.ctx); err != nil {
			lc.leg.Emit(sb.LegEvent{Kind: sb.LegFailed, Code: 408, Reason: "the media to the WhatsApp user did not connect"})
			return
		}
		lc.leg.answered.Store(true)
		lc.leg.Emit(sb.LegEvent{Kind: sb.LegAnswered})
	}()
}

// terminated is WhatsApp ending the call: the user hung up, or the call
// failed on their side.
func (s *Service) terminated(ctx context.Context, conn *sb.WhatsAppConnection, c callEvent) {
	lc := s.await(ctx, conn.ID, c.ID)
	if lc == nil {
		s.count(resultUnknownCall)
		return
	}
	s.count(resultAccepted)
	reason := "the WhatsApp user hung up"
	if strings.EqualFold(c.Status, "FAILED") {
		reason = "WhatsApp ended the call as failed"
		if len(c.Errors) > 0 {
			reason += ": error " + strconv.Itoa(c.Errors[0].Code)
		}
	}
	lc.leg.userTerminated(lc.outbound, reason)
}

// statusEvent is how a call we place stands on the user's phone.
func (s *Service) statusEvent(ctx context.Context, conn *sb.WhatsAppConnection, st statusEvent) {
	if !s.fresh(strings.Join([]string{"status", conn.ID.String(), st.ID, st.Status}, "|"), st.Timestamp) {
		s.count(resultReplay)
		return
	}
	lc := s.await(ctx, conn.ID, st.ID)
	if lc == nil {
		s.count(resultUnknownCall)
		return
	}
	s.count(resultAccepted)
	if !lc.outbound {
		return
	}
	switch strings.ToUpper(st.Status) {
	case "RINGING":
		lc.leg.Emit(sb.LegEvent{Kind: sb.LegRinging})
	case "REJECTED":
		lc.leg.terminated.Store(true)
		lc.leg.Emit(sb.LegEvent{Kind: sb.LegFailed, Code: 603, Reason: "the WhatsApp user declined the call"})
	}
	// ACCEPTED follows the answer that connected the media: nothing to do.
}
