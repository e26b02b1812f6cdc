package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// callsPerPhone is how many concurrent calls share one SIP user agent.
const callsPerPhone = 100

// frame is one 20 ms G.711 frame.
const frame = 20 * time.Millisecond

type loadRun struct {
	c      *config
	log    io.Writer
	number string
	ops    []*operator
	phones []*siptest.Phone

	// With -target janus: the emulated browsers, and the free ones' users
	// (Janus has no queues: each call goes to a free browser by name).
	janus []*janusOp
	free  chan int

	mu          sync.Mutex
	toOperator  []*stream
	toCaller    []*stream
	setup       []time.Duration
	attempted   int
	answered    int
	failed      map[string]int
	callSeconds float64
	active      atomic.Int64
	peakActive  int64
	bare        procSample // the service before the operators connected

	sentToOperator atomic.Int64 // pattern frames the trunks sent
	sentToCaller   atomic.Int64 // pattern frames the operators sent
}

// operator is one emulated operator: auto-answers, sends the pattern
// while on a call, checks what arrives.
type operator struct {
	c     *opclient.Client
	delay time.Duration
	r     *loadRun

	mu  sync.Mutex
	in  *stream // the current call's caller → operator stream
	seq uint32
}

func newRun(ctx context.Context, c *config, log io.Writer) (*loadRun, error) {
	r := &loadRun{c: c, log: log, failed: map[string]int{}}
	if c.isJanus() {
		return r, r.connectJanusAll(ctx)
	}
	users, err := r.provision(ctx)
	if err != nil {
		return nil, err
	}
	if r.bare, err = r.sample(); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "connecting %d operators…\n", len(users))
	var wg sync.WaitGroup
	errs := make(chan error, len(users))
	sem := make(chan struct{}, 16)
	r.ops = make([]*operator, len(users))
	for i, email := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			op, err := r.connect(ctx, email)
			if err != nil {
				errs <- fmt.Errorf("operator %s: %w", email, err)
				return
			}
			r.ops[i] = op
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		r.close()
		return nil, err
	}
	return r, r.dialPhones()
}

// dialPhones makes the trunks' SIP user agents.
func (r *loadRun) dialPhones() error {
	c := r.c
	for i := 0; i < (c.Calls+callsPerPhone-1)/callsPerPhone; i++ {
		codec := sb.PCMU
		if c.Codec == "PCMA" {
			codec = sb.PCMA
		}
		opts := siptest.Options{Transport: c.Transport, Codec: codec}
		if c.Recording {
			opts.Headers = map[string]string{"X-Recording-Consent": "yes"}
		}
		p, err := siptest.NewPhone(opts)
		if err != nil {
			r.close()
			return err
		}
		r.phones = append(r.phones, p)
	}
	return nil
}

// connectJanusAll attaches the emulated browsers to Janus and registers
// them.
func (r *loadRun) connectJanusAll(ctx context.Context) error {
	r.bare, _ = r.sample()
	fmt.Fprintf(r.log, "registering %d Janus SIP handles…\n", r.c.Operators)
	wapi, err := loopbackAPI()
	if err != nil {
		return err
	}
	api := &janusAPI{url: r.c.JanusURL, client: &http.Client{Timeout: 40 * time.Second}}
	r.janus = make([]*janusOp, r.c.Operators)
	r.free = make(chan int, r.c.Operators)
	var wg sync.WaitGroup
	errs := make(chan error, r.c.Operators)
	sem := make(chan struct{}, 16)
	for i := range r.janus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			op, err := r.connectJanus(ctx, api, wapi, janusUser(i))
			if err != nil {
				errs <- err
				return
			}
			r.janus[i] = op
			r.free <- i
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		r.close()
		return err
	}
	return r.dialPhones()
}

const loadPassword = "load-tool-password"

// provision creates the run's own tenant, operators and trunk.
func (r *loadRun) provision(ctx context.Context) ([]string, error) {
	db, err := metadata.Open(ctx, r.c.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	tag := make([]byte, 4)
	rand.Read(tag)
	id := hex.EncodeToString(tag)
	tenant := &sb.Tenant{Name: "load " + id}
	if r.c.Recording {
		tenant.RecordingPolicy = sb.RecordWithConsent
	}
	if err := metadata.NewTenantService(db).CreateTenant(ctx, tenant); err != nil {
		return nil, fmt.Errorf("provision tenant: %w", err)
	}
	users := metadata.NewUserService(db)
	var emails []string
	for i := 0; i < r.c.Operators; i++ {
		u := &sb.User{TenantID: tenant.ID, Email: fmt.Sprintf("op%d@load-%s.test", i, id), Role: sb.RoleOperator}
		if err := users.CreateUser(ctx, u, loadPassword); err != nil {
			return nil, fmt.Errorf("provision operator: %w", err)
		}
		emails = append(emails, u.Email)
	}
	r.number = fmt.Sprintf("+1999%08d", int(tag[0])<<16|int(tag[1])<<8|int(tag[2]))
	trunk := &sb.Trunk{TenantID: tenant.ID, Name: "load", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Numbers: []string{r.number}}
	if err := metadata.NewTrunkService(db).CreateTrunk(ctx, trunk, ""); err != nil {
		return nil, fmt.Errorf("provision trunk: %w", err)
	}
	return emails, nil
}

func (r *loadRun) connect(ctx context.Context, email string) (*operator, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := opclient.Login(cctx, r.c.HTTPURL, email, loadPassword, opclient.WithLoopbackOnly())
	if err != nil {
		return nil, err
	}
	op := &operator{c: c, delay: r.c.AnswerDelay, r: r}
	c.SetAudioSink(op.receive)
	if err := c.Connect(cctx); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.SetAvailable(cctx); err != nil {
		c.Close()
		return nil, err
	}
	go op.serve(ctx)
	return op, nil
}

func (op *operator) receive(p *rtp.Packet) {
	op.mu.Lock()
	s := op.in
	op.mu.Unlock()
	if s != nil && p.PayloadType == 0 {
		s.add(p.Payload, time.Now())
	}
}

// serve answers offered calls, sends the pattern while connected, and
// stops at the call's end.
func (op *operator) serve(ctx context.Context) {
	for {
		var in opclient.Incoming
		select {
		case in = <-op.c.Incoming():
		case <-ctx.Done():
			return
		}
		if op.delay > 0 {
			time.Sleep(op.delay)
		}
		s := &stream{}
		op.mu.Lock()
		op.in = s
		op.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := op.c.Accept(actx, in.CallID)
		cancel()
		if err != nil {
			continue
		}
		op.r.mu.Lock()
		op.r.toOperator = append(op.r.toOperator, s)
		op.r.mu.Unlock()
		callCtx, stop := context.WithCancel(ctx)
		if op.r.c.Media {
			go op.talk(callCtx)
		}
		op.c.WaitEnded(ctx, in.CallID)
		stop()
		op.mu.Lock()
		op.in = nil
		op.mu.Unlock()
	}
}

func (op *operator) talk(ctx context.Context) {
	buf := make([]byte, 160)
	tick := time.NewTicker(frame)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			op.seq++
			if op.c.SendAudio(media.PatternFrame(buf, op.seq, time.Now())) == nil {
				op.r.sentToCaller.Add(1)
			}
		}
	}
}

// execute places calls at the configured rate up to the concurrency, and
// waits for them all to end.
func (r *loadRun) execute(ctx context.Context) (*report, error) {
	base, err := r.sample()
	if err != nil {
		return nil, err
	}
	var before *runtimeSample
	if !r.c.isJanus() {
		s, err := scrapeRuntime(ctx, r.c.MetricsURL, r.c.MetricsToken)
		if err != nil {
			return nil, err
		}
		before = &s
	}
	start := time.Now()
	lastLaunch := start.Add(r.c.Duration - r.c.Hold)
	fmt.Fprintf(r.log, "placing calls: %d concurrent, %.0f/s, %s each, for %s\n", r.c.Calls, r.c.Rate, r.c.Hold, r.c.Duration)

	peak := base
	sampleDone := make(chan struct{})
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go func() {
		defer close(sampleDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
				if s, err := r.sample(); err == nil && s.RSSBytes > peak.RSSBytes {
					peak = s
				}
			}
		}
	}()

	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.c.Rate))
	defer tick.Stop()
	n := 0
	for first := true; first || time.Now().Before(lastLaunch); first = false {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if int(r.active.Load()) >= r.c.Calls {
			continue
		}
		phone := r.phones[n%len(r.phones)]
		n++
		wg.Add(1)
		r.active.Add(1)
		go func() {
			defer wg.Done()
			defer r.active.Add(-1)
			r.call(ctx, phone)
		}()
		if a := r.active.Load(); a > r.peakActive {
			r.peakActive = a
		}
		if r.c.Hold >= r.c.Duration && n >= r.c.Calls {
			break
		}
	}
	wg.Wait()
	stopSampling()
	<-sampleDone
	end, err := r.sample()
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	rep := r.report(elapsed, base, peak, end)
	if before != nil {
		rep.Before = before
		after, err := r.settled(ctx, before.Goroutines)
		if err != nil {
			return nil, err
		}
		rep.After = &after
		rep.ToOperator.InService = newServiceDelay(after.relayDelay["from_caller"], before.relayDelay["from_caller"])
		rep.ToCaller.InService = newServiceDelay(after.relayDelay["to_caller"], before.relayDelay["to_caller"])
	}
	return rep, nil
}

// settled samples the service's runtime once the calls' goroutines have
// had time to end: when the count is back to what it was and no call is
// in progress, or after 15 s.
func (r *loadRun) settled(ctx context.Context, goroutines float64) (runtimeSample, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := scrapeRuntime(ctx, r.c.MetricsURL, r.c.MetricsToken)
		if err != nil || s.Goroutines <= goroutines && s.ActiveCalls == 0 || time.Now().After(deadline) {
			return s, err
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (r *loadRun) sample() (procSample, error) {
	if r.c.PID == 0 {
		return procSample{}, nil
	}
	return sampleProc(r.c.PID)
}

// call places one call, talks for the hold time, checks what came back,
// and hangs up.
func (r *loadRun) call(ctx context.Context, phone *siptest.Phone) {
	r.mu.Lock()
	r.attempted++
	r.mu.Unlock()
	to := r.number
	if r.free != nil {
		var n int
		select {
		case n = <-r.free:
		case <-ctx.Done():
			return
		}
		to = janusUser(n)
		defer func() { r.janus[n].idle(); r.free <- n }()
	}
	began := time.Now()
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	call, err := phone.Invite(ictx, r.c.SIPAddr, "+15550000000", to)
	cancel()
	if err != nil {
		r.fail(err)
		return
	}
	defer call.Close()
	setup := time.Since(began)
	in := &stream{}
	call.SetSink(func(pkt []byte) {
		if h, ok := media.ParseHeader(pkt); ok && h.PayloadType == 0 {
			in.add(pkt[h.PayloadOffset:h.PayloadEnd], time.Now())
		}
	})
	r.mu.Lock()
	r.answered++
	r.setup = append(r.setup, setup)
	r.toCaller = append(r.toCaller, in)
	r.mu.Unlock()

	buf := make([]byte, 160)
	tick := time.NewTicker(frame)
	defer tick.Stop()
	talkStart := time.Now()
	for seq := uint32(1); time.Since(talkStart) < r.c.Hold; seq++ {
		if r.c.Media { // without media the call is only held
			if err := call.SendRTP(media.PatternFrame(buf, seq, time.Now()), false); err == nil {
				r.sentToOperator.Add(1)
			}
		}
		select {
		case <-tick.C:
		case <-call.Ended():
			r.fail(fmt.Errorf("ended by the service"))
			return
		case <-ctx.Done():
			return
		}
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := call.Hangup(hctx); err != nil {
		r.fail(fmt.Errorf("hangup: %w", err))
	}
	r.mu.Lock()
	r.callSeconds += time.Since(talkStart).Seconds()
	r.mu.Unlock()
}

func (r *loadRun) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := err.Error()
	if se, ok := err.(*siptest.StatusError); ok {
		msg = fmt.Sprintf("SIP %d %s", se.Code, se.Reason)
	}
	r.failed[msg]++
}

func (r *loadRun) close() {
	for _, op := range r.ops {
		if op != nil {
			op.c.Close()
		}
	}
	for _, p := range r.phones {
		p.Close()
	}
	for _, op := range r.janus {
		if op != nil {
			op.close()
		}
	}
}
