package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// maxGraphAnswer bounds what we read of a Graph API answer.
const maxGraphAnswer = 64 << 10

// newHTTPClient is the client our Graph API requests go out with: no
// proxy from the environment, no redirects followed, and, unless private
// addresses are allowed, only public addresses dialled (checked after
// resolution), so that a tenant's graph_url cannot reach the service's
// own network.
func newHTTPClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip, err := netip.ParseAddr(host); err != nil || !sb.PublicAddress(ip) {
				return fmt.Errorf("whatsapp: %s is not a public address", host)
			}
			return nil
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = dialer.DialContext
	transport.Proxy = nil
	return &http.Client{Timeout: 10 * time.Second, Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// graph is one connection's Graph API: its business phone number's
// endpoints, with its access token.
type graph struct {
	http    *http.Client
	base    string
	phoneID string
	token   string
}

// session is an SDP offer or answer as the Calling API carries it.
type session struct {
	SDPType string `json:"sdp_type"`
	SDP     string `json:"sdp"`
}

// callAction is the body of POST /<PHONE_NUMBER_ID>/calls.
type callAction struct {
	MessagingProduct string   `json:"messaging_product"`
	CallID           string   `json:"call_id,omitempty"`
	To               string   `json:"to,omitempty"`
	Action           string   `json:"action"`
	Session          *session `json:"session,omitempty"`
}

// act sends an action on a call: pre_accept and accept carry our SDP
// answer, reject and terminate nothing else.
func (g *graph) act(ctx context.Context, callID, action, answer string) error {
	body := callAction{MessagingProduct: "whatsapp", CallID: callID, Action: action}
	if answer != "" {
		body.Session = &session{SDPType: "answer", SDP: answer}
	}
	var out struct {
		Success bool `json:"success"`
	}
	if err := g.post(ctx, "/calls", body, &out); err != nil {
		return err
	}
	if !out.Success {
		return &sb.MessengerError{Channel: sb.ChannelWhatsApp, Status: http.StatusOK, Message: action + " was not confirmed"}
	}
	return nil
}

// connect places a call to a WhatsApp user with our SDP offer and returns
// the call's ID.
func (g *graph) connect(ctx context.Context, to, offer string) (string, error) {
	body := callAction{MessagingProduct: "whatsapp", To: strings.TrimPrefix(to, "+"), Action: "connect",
		Session: &session{SDPType: "offer", SDP: offer}}
	var out struct {
		Calls []struct {
			ID string `json:"id"`
		} `json:"calls"`
	}
	if err := g.post(ctx, "/calls", body, &out); err != nil {
		return "", err
	}
	if len(out.Calls) != 1 || out.Calls[0].ID == "" || len(out.Calls[0].ID) > maxCallID {
		return "", &sb.MessengerError{Channel: sb.ChannelWhatsApp, Status: http.StatusOK, Message: "connect answered without a call ID"}
	}
	return out.Calls[0].ID, nil
}

// requestPermission sends the user an interactive call permission request
// (POST /<PHONE_NUMBER_ID>/messages).
func (g *graph) requestPermission(ctx context.Context, to, text string) error {
	body := map[string]any{
		"messaging_product": "whatsapp",
		"recipient_type":    "individual",
		"to":                strings.TrimPrefix(to, "+"),
		"type":              "interactive",
		"interactive": map[string]any{
			"type":   "call_permission_request",
			"action": map[string]string{"name": "call_permission_request"},
			"body":   map[string]string{"text": text},
		},
	}
	var out struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	return g.post(ctx, "/messages", body, &out)
}

// post sends a request to one of the number's endpoints; an answer other
// than 200 is a *sb.MessengerError with the Graph API's code.
func (g *graph) post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("whatsapp: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/"+g.phoneID+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("whatsapp: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.http.Do(req)
	if err != nil {
		return fmt.Errorf("whatsapp: graph api: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxGraphAnswer))
	if err != nil {
		return fmt.Errorf("whatsapp: graph api answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Message string `json:"message"`
				Code    int    `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &e) // an answer that is not Graph's error shape keeps only its status
		return &sb.MessengerError{Channel: sb.ChannelWhatsApp, Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &sb.MessengerError{Channel: sb.ChannelWhatsApp, Status: resp.StatusCode, Message: "the answer does not parse"}
	}
	return nil
}
