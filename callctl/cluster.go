package callctl

import (
	"context"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// WithCluster makes the Switch one of several instances: name is this
// instance's, secret signs the hops it hands over.
func WithCluster(c sb.Cluster, name string, secret []byte) SwitchOption {
	return func(s *Switch) { s.cluster, s.instance, s.hopSecret = c, name, secret }
}

// presenceChanged asks for this instance's presence to be published.
func (s *Switch) presenceChanged() {
	if s.poke == nil {
		return
	}
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// woken returns a channel closed when another instance next says it has
// an operator free (nil, never closed, without a cluster).
func (s *Switch) woken() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

// wakeAll tells the calls waiting in line to look at the other instances
// again.
func (s *Switch) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wake != nil {
		close(s.wake)
		s.wake = make(chan struct{})
	}
}

// presenceEvery is how often an instance publishes its presence even when
// nothing changed: it is also the heartbeat that says it is alive.
const presenceEvery = 2 * time.Second

// RunCluster publishes this instance's operators' presence (when it
// changes, and every presenceEvery) and listens for the other instances'
// until ctx ends; then it withdraws the presence. Without a cluster it
// returns at once.
func (s *Switch) RunCluster(ctx context.Context) {
	if s.cluster == nil {
		return
	}
	go func() {
		for ctx.Err() == nil {
			if err := s.cluster.Listen(ctx, s.wakeAll); err != nil && ctx.Err() == nil {
				s.log.Warn("cluster: listening for other instances", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	tick := time.NewTicker(presenceEvery)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := s.cluster.Publish(pctx, s.presence()); err != nil && ctx.Err() == nil {
			s.log.Warn("cluster: publishing presence", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.cluster.Publish(wctx, nil)
			cancel()
			return
		case <-tick.C:
		case <-s.poke:
		}
	}
}

// presence is a snapshot of this instance's operators; a draining
// instance offers none.
func (s *Switch) presence() []sb.Presence {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sb.Presence, 0, len(s.agents))
	for id, a := range s.agents {
		state := a.state.String()
		if s.draining && a.state == agentAvailable {
			state = "away"
		}
		out = append(out, sb.Presence{OperatorID: id, TenantID: a.conn.TenantID(), State: state, IdleSince: a.idleSince})
	}
	return out
}
