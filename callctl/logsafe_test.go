package callctl_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/callctl"
)

// lockedBuffer is a log destination the call's goroutine and the test
// share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// failingDialer fails as a SIP stack does: naming the request's URI.
type failingDialer struct{}

func (failingDialer) Dial(_ context.Context, r sb.OutboundRoute, user string) (sb.OutboundLeg, error) {
	return nil, fmt.Errorf("sip: dial %s: transaction timed out: INVITE sip:%s@%s", r.Target, user, r.Target)
}

// A transfer to a SIP URI that cannot be placed is logged without the
// number the URI names: logs hold no numbers.
func TestTransferErrorsLogNoNumber(t *testing.T) {
	logs := &lockedBuffer{}
	h := newPhaseHarness(t, phaseCase{}, false, callctl.WithLogger(slog.New(slog.NewTextHandler(logs, nil))), callctl.WithDialer(failingDialer{}, routes{}))
	h.talking(t)
	if err := h.sw.TransferCall(h.op1.id, h.callID, sb.TransferTarget{URI: "sip:+15550007777@127.0.0.1:5099"}); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(t, sb.EventEnded)
	got := logs.String()
	if !strings.Contains(got, "transfer to a SIP URI") || !strings.Contains(got, "+*******7777@127.0.0.1") {
		t.Fatalf("the failed transfer is not logged, masked:\n%s", got)
	}
	if strings.Contains(got, "5550007777") {
		t.Errorf("the log holds the number:\n%s", got)
	}
}
