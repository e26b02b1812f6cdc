package webhooks

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/webhooks/signature"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// oneDelivery is a Store holding one delivery, due by the test clock.
type oneDelivery struct {
	d     *sb.WebhookDelivery
	clock *clock
}

func (s *oneDelivery) Enqueue(context.Context, ...sb.WebhookEvent) (int, error) { return 0, nil }
func (s *oneDelivery) TakeDue(context.Context, int) ([]*sb.WebhookDelivery, error) {
	if s.d.Status != "pending" || s.d.NextAttemptAt.After(s.clock.Now()) {
		return nil, nil
	}
	d := *s.d
	return []*sb.WebhookDelivery{&d}, nil
}
func (s *oneDelivery) RecordAttempt(_ context.Context, d *sb.WebhookDelivery) error {
	*s.d = *d
	return nil
}

// attempts runs the sender on a clock that jumps from one due time to the
// next, and returns when each attempt reached the receiver; recoverAt > 0
// is when the receiver starts answering 204 (503 before). No real time
// passes: the clock is read by the sender, the store and the receiver.
func attempts(t *testing.T, jitter func(time.Duration) time.Duration, recoverAt time.Duration) ([]time.Duration, *sb.WebhookDelivery) {
	t.Helper()
	start := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	clk := &clock{now: start}
	body := `{"id":"0193a7c2-5b9e-7c11-8f1e-2b1f9d0c4a11","event":"call.ended"}`
	var mu sync.Mutex // the receiver's goroutine appends, the test reads
	var at []time.Duration
	sent := func() int { mu.Lock(); defer mu.Unlock(); return len(at) }
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		now := clk.Now()
		if string(got) != body {
			t.Errorf("body %s, want the stored payload %s", got, body)
		}
		// Signed afresh at each attempt: a receiver with a 5-minute
		// tolerance accepts the retry at hour 20.
		if err := signature.VerifyAt(r.Header.Get(signature.Header), got, []string{"whsec_old"}, 5*time.Minute, now); err != nil {
			t.Errorf("attempt at %s: %v", now.Sub(start), err)
		}
		mu.Lock()
		at = append(at, now.Sub(start))
		mu.Unlock()
		if recoverAt > 0 && now.Sub(start) >= recoverAt {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer receiver.Close()
	st := &oneDelivery{clock: clk, d: &sb.WebhookDelivery{ID: sb.NewID(), WebhookID: sb.NewID(), Event: "call.ended", Payload: []byte(body),
		Status: "pending", NextAttemptAt: start, CreatedAt: start, URL: receiver.URL, Secrets: [][]byte{[]byte("whsec_old")}}}
	h := New(st, slog.New(slog.DiscardHandler), WithPrivateTargets(), WithClock(clk.Now))
	h.jitter = jitter
	for range 100 {
		if _, err := h.Send(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st.d.Status != "pending" {
			mu.Lock()
			defer mu.Unlock()
			return at, st.d
		}
		if !st.d.NextAttemptAt.After(clk.Now()) {
			t.Fatalf("after attempt %d the next is at %s, not later than now", st.d.Attempts, st.d.NextAttemptAt)
		}
		// Just before it is due nothing is sent.
		clk.Set(st.d.NextAttemptAt.Add(-time.Millisecond))
		n := sent()
		if _, err := h.Send(context.Background()); err != nil || sent() != n {
			t.Fatalf("attempt %d sent before it was due (%v)", n+1, err)
		}
		clk.Set(st.d.NextAttemptAt)
	}
	t.Fatalf("still pending after 100 attempts: %+v", st.d)
	return nil, nil
}

// A receiver that is down is retried for a day: after 10 s, then twice as
// long each time up to an hour, the last attempt at the 24-hour mark; then
// the delivery has failed. Each wait is shortened at random by at most a
// quarter.
func TestRetriesForADay(t *testing.T) {
	for _, c := range []struct {
		name   string
		jitter func(time.Duration) time.Duration
	}{
		{"no jitter", func(time.Duration) time.Duration { return 0 }},
		{"the most jitter", func(max time.Duration) time.Duration { return max - 1 }},
		{"random jitter", randomJitter},
	} {
		at, d := attempts(t, c.jitter, 0)
		if d.Status != "failed" || d.Attempts != len(at) || d.LastStatus != 503 || d.DeliveredAt != nil {
			t.Errorf("%s: %s after %d attempts (%d reached the receiver), last %d", c.name, d.Status, d.Attempts, len(at), d.LastStatus)
		}
		if at[0] != 0 || at[len(at)-1] != RetryFor {
			t.Errorf("%s: the first attempt at %s, the last at %s; want 0 and %s", c.name, at[0], at[len(at)-1], RetryFor)
		}
		for i := 1; i < len(at)-1; i++ { // the last wait is cut to the deadline
			wait, want := at[i]-at[i-1], MaxWait
			if i < 16 {
				want = min(FirstRetry<<(i-1), MaxWait)
			}
			if wait > want || wait < want*3/4 {
				t.Errorf("%s: wait %d is %s, want %s less at most a quarter", c.name, i, wait, want)
			}
		}
		if len(at) < 33 || len(at) > 42 {
			t.Errorf("%s: %d attempts in a day, want 33 to 42", c.name, len(at))
		}
	}
	// Exactly: 10 s … 2560 s (9 waits, 5110 s), then hourly to the 24 h mark.
	at, _ := attempts(t, func(time.Duration) time.Duration { return 0 }, 0)
	if want := 1 + 9 + int((RetryFor-5110*time.Second+time.Hour-1)/time.Hour); len(at) != want {
		t.Errorf("without jitter %d attempts, want %d", len(at), want)
	}
}

// A receiver back after 20 hours gets the delivery then, and no more.
func TestRetryDeliversWhenTheReceiverIsBack(t *testing.T) {
	at, d := attempts(t, func(time.Duration) time.Duration { return 0 }, 20*time.Hour)
	last := at[len(at)-1]
	if d.Status != "delivered" || d.LastStatus != 204 || d.DeliveredAt == nil || last < 20*time.Hour || last > 21*time.Hour ||
		d.DeliveredAt.Sub(d.CreatedAt) != last || d.LastError != "" {
		t.Errorf("%s after %d attempts, the last at %s (delivered %v), error %q", d.Status, d.Attempts, last, d.DeliveredAt, d.LastError)
	}
}
