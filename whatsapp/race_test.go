package whatsapp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// answeringPeer is the peer of a call we place: it takes the user's
// answer and tells of it.
type answeringPeer struct {
	quietPeer
	answer chan string
}

func (p *answeringPeer) SetAnswer(sdp string) error { p.answer <- sdp; return nil }

// connecting reports whether a connect is in flight on conn.
func (s *Service) connecting(conn sb.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.placing[conn] != nil
}

// The user's answer to a call we place can reach us before the Graph
// API's answer to connect has told us the call's ID (the phone rang and
// was picked up at once): it waits for the connect in flight instead of
// being dropped as a call we do not know, and the call goes on.
func TestAnswerBeforeConnectReturns(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	graphSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in callAction
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			t.Errorf("graph request: %v", err)
		}
		if in.Action != "connect" {
			io.WriteString(w, `{"success":true}`) // the test's end: terminate
			return
		}
		<-release // the answer webhook goes first
		io.WriteString(w, `{"messaging_product":"whatsapp","calls":[{"id":"wacid.early"}]}`)
	}))
	t.Cleanup(graphSrv.Close)
	t.Cleanup(let) // first: a connect held must end for the server to close
	conn := sb.WhatsAppConnection{ID: sb.NewID(), TenantID: sb.NewID(), Name: "line", PhoneNumberID: "123", Number: "+15550001000", GraphURL: graphSrv.URL}
	peer := &answeringPeer{answer: make(chan string, 1)}
	s := New(oneConnection{conn}, nil,
		func(context.Context) (OfferingPeer, string, error) { return peer, "v=0\r\no=offer\r\n", nil },
		func(*sb.InboundCall) {}, WithPrivateGraph())
	t.Cleanup(s.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		leg sb.MessengerLeg
		err error
	}
	placed := make(chan result, 1)
	go func() {
		leg, err := s.DialMessenger(ctx, conn.TenantID, sb.ChannelWhatsApp, "+4915112345678")
		placed <- result{leg, err}
	}()
	// The webhook comes while connect is in flight.
	for !s.connecting(conn.ID) {
		time.Sleep(time.Millisecond)
	}
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"calls","value":{"metadata":{"phone_number_id":"123"},` +
		`"calls":[{"id":"wacid.early","event":"connect","session":{"sdp_type":"answer","sdp":"v=0\r\no=answer\r\n"}}]}}]}]}`)
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
	r.Header.Set("X-Hub-Signature-256", sign(body, testSecret))
	var handled atomic.Bool
	webhook := make(chan int, 1)
	go func() {
		w := httptest.NewRecorder()
		s.ServeWebhook(w, r, conn.ID)
		handled.Store(true)
		webhook <- w.Code
	}()
	time.Sleep(100 * time.Millisecond)
	if handled.Load() {
		t.Fatal("the answer was dealt with before connect told the call's ID")
	}
	let()
	p := <-placed
	if p.err != nil {
		t.Fatal(p.err)
	}
	defer p.leg.Close()
	if code := <-webhook; code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	select {
	case sdp := <-peer.answer:
		if !strings.Contains(sdp, "o=answer") {
			t.Errorf("the peer took %q, want the user's answer", sdp)
		}
	default:
		t.Fatalf("the user's answer was not taken; counts %v", s.Counts())
	}
	if n := s.Counts()[resultUnknownCall]; n != 0 {
		t.Errorf("%d events taken for an unknown call", n)
	}
}
