package webhooks

import (
	"math/rand/v2"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// How a failed delivery is retried: after 10 s, then twice as long each
// time up to an hour, for 24 hours from the event: 33 to 42 attempts.
// Each wait is shortened at random by up to a quarter, so deliveries that
// failed together (a receiver that was down) do not all come back at once.
const (
	FirstRetry = 10 * time.Second
	MaxWait    = time.Hour
	RetryFor   = 24 * time.Hour
)

// retryWait is the wait after a delivery's attempts-th failed attempt,
// before the random shortening.
func retryWait(attempts int) time.Duration {
	if attempts < 1 {
		attempts = 1
	}
	if attempts > 16 { // long past MaxWait; no shift overflows
		return MaxWait
	}
	return min(FirstRetry<<(attempts-1), MaxWait)
}

// settle records one attempt's outcome on d: delivered; or retried at a
// time the policy above sets, the last time at the 24-hour mark; or, past
// it, failed.
func (h *Hooks) settle(d *sb.WebhookDelivery, status int, attemptErr error) {
	now := h.now().UTC()
	d.Attempts++
	d.LastStatus, d.LastError = status, ""
	if attemptErr != nil {
		d.LastError = attemptErr.Error()
	}
	if attemptErr == nil && status >= 200 && status < 300 {
		d.Status, d.DeliveredAt = "delivered", &now
		return
	}
	deadline := d.CreatedAt.Add(RetryFor)
	if !now.Before(deadline) {
		d.Status = "failed"
		return
	}
	wait := retryWait(d.Attempts)
	wait -= h.jitter(wait / 4)
	d.Status, d.NextAttemptAt = "pending", now.Add(wait)
	if d.NextAttemptAt.After(deadline) {
		d.NextAttemptAt = deadline
	}
}

// randomJitter is a random duration in [0, max).
func randomJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}
