package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/opclient"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// binaryService is the real switchboard binary, run as `switchboard serve`
// on ports of its own choosing.
type binaryService struct {
	bin     string
	env     []string
	httpURL string
	sipAddr string
	// metricsURL is /metrics on the service's own metrics address.
	metricsURL string
	kill       func() // SIGKILL, and wait for the process to be gone
}

// mustBuildBinary builds ./cmd/switchboard into a temporary folder.
func mustBuildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "switchboard")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var listeningRE = regexp.MustCompile(`"msg":"listening","http":"([^"]+)","sip":"([^"]+)".*"metrics":"([^"]*)"`)

// mustStartBinary runs `switchboard serve` against a fresh database and
// waits until it says where it listens. env adds or overrides settings.
func mustStartBinary(t *testing.T, env ...string) *binaryService {
	t.Helper()
	return mustStartBinaryOf(t, mustBuildBinary(t), env...)
}

// mustStartBinaryOf is mustStartBinary with a binary already built.
func mustStartBinaryOf(t *testing.T, bin string, env ...string) *binaryService {
	t.Helper()
	s := &binaryService{bin: bin}
	s.env = append(os.Environ(),
		"SWITCHBOARD_DATABASE_URL="+testenv.DatabaseURL(t),
		"SWITCHBOARD_HTTP_ADDR=127.0.0.1:0",
		"SWITCHBOARD_METRICS_ADDR=127.0.0.1:0",
		"SWITCHBOARD_SIP_ADDR=127.0.0.1:0",
		"SWITCHBOARD_RTP_PORTS=",
		"SWITCHBOARD_WEBRTC_LOOPBACK=true",
		"SWITCHBOARD_RING_TIMEOUT=5s",
		"SWITCHBOARD_DRAIN_TIMEOUT=2s",
		"SWITCHBOARD_MEDIA_TIMEOUT=3s",
		"SWITCHBOARD_INSTANCE=test-"+sb.NewID().String(),
		"SWITCHBOARD_JOURNAL="+filepath.Join(t.TempDir(), "journal"),
		// As in mustStartServiceWith: a moment's wait on the shared test
		// machine is no overload.
		"SWITCHBOARD_OVERLOAD_SIP_DELAY=0",
		"SWITCHBOARD_OVERLOAD_DB_DELAY=0",
	)
	s.env = append(s.env, env...) // the last of a name wins
	s.start(t)
	return s
}

// start runs the binary with s's settings and waits until it listens.
func (s *binaryService) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(s.bin, "serve")
	cmd.Env = s.env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.kill = func() {
		cmd.Process.Kill()
		<-exited
		exited <- nil // the cleanup below sees a process that is gone
	}

	found := make(chan []string, 1)
	var logMu sync.Mutex
	var log bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("switchboard serve exited with %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("switchboard serve did not stop on SIGINT")
		}
		logMu.Lock()
		t.Logf("switchboard serve log:\n%s", log.String())
		logMu.Unlock()
	})
	select {
	case m := <-found:
		s.httpURL, s.sipAddr, s.metricsURL = "http://"+m[1], m[2], "http://"+m[3]+"/metrics"
	case err := <-exited:
		t.Fatalf("switchboard serve exited early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("switchboard serve did not start listening")
	}
}

// run runs a provisioning command of the binary and returns its output.
func (s *binaryService) run(t *testing.T, password string, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(s.env, "SWITCHBOARD_PASSWORD="+password)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("switchboard %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// sippPorts returns a signalling and a media port for SIPp whose ranges
// (each port and the three after it) do not overlap: two calls of
// freeUDPPort alone may return p and p+2, and SIPp then fails to bind.
func sippPorts(t *testing.T) (sig, media int) {
	t.Helper()
	sig = freeUDPPort(t)
	for {
		media = freeUDPPort(t)
		if media >= sig+4 || media+4 <= sig {
			return sig, media
		}
	}
}

// freeUDPPort returns a port p with p..p+3 free for UDP on 127.0.0.1, as
// SIPp wants for its signalling and media sockets.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if p%2 != 0 || p > 65000 {
			continue
		}
		ok := true
		for q := p; q < p+4 && ok; q++ {
			c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				ok = false
				continue
			}
			c.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free UDP ports")
	return 0
}

// sipp runs a scenario from testdata/sipp against the service.
func sipp(ctx context.Context, t *testing.T, scenario, number, target string) ([]byte, error) {
	t.Helper()
	return sippFrom(ctx, t, "127.0.0.1", scenario, number, target)
}

// sippFrom is sipp from another loopback address, for a trunk that is not
// recognised by its source.
func sippFrom(ctx context.Context, t *testing.T, localIP, scenario, number, target string) ([]byte, error) {
	t.Helper()
	return sippIn(ctx, t, t.TempDir(), localIP, scenario, number, target)
}

// sippMessages is sipp that also returns every message SIPp sent and
// received, as it logged them (-trace_msg).
func sippMessages(ctx context.Context, t *testing.T, scenario, number, target string) (out []byte, messages string, err error) {
	t.Helper()
	dir := t.TempDir()
	out, err = sippIn(ctx, t, dir, "127.0.0.1", scenario, number, target, "-trace_msg")
	logs, _ := filepath.Glob(filepath.Join(dir, "*_messages.log"))
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		messages += string(b)
	}
	return out, messages, err
}

// sippIn runs sipp in dir, with extra arguments.
func sippIn(ctx context.Context, t *testing.T, dir, localIP, scenario, number, target string, extra ...string) ([]byte, error) {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", scenario))
	if err != nil {
		return nil, err
	}
	sigPort, mediaPort := sippPorts(t)
	cmd := exec.CommandContext(ctx, "sipp",
		"-sf", path,
		"-s", number, "-i", localIP, "-mi", localIP,
		"-p", fmt.Sprint(sigPort), "-mp", fmt.Sprint(mediaPort),
		"-m", "1", "-l", "1", "-timeout", "40s", "-timeout_error", "-nostdin",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	cmd.Args = append(append(cmd.Args, extra...), target)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		return out, fmt.Errorf("sipp %s: %w\n%s", scenario, err, errs)
	}
	return out, nil
}

// TestSIPpAgainstTheBinary runs the SIPp scenarios of testdata/sipp against
// the real binary, provisioned with its own commands.
func TestSIPpAgainstTheBinary(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		requireDependency(t, "sipp (Debian package sip-tester)")
	}
	s := mustStartBinary(t)
	tenant := s.run(t, "", "tenant", "create", "--name", "SIPp")
	s.run(t, testPassword, "user", "create", "--tenant", tenant, "--email", "op@sipp.test", "--role", "operator")
	s.run(t, "", "trunk", "create", "--tenant", tenant, "--name", "sipp", "--allow", "127.0.0.1/32", "--number", "2000")
	key := s.run(t, "", "apikey", "create", "--tenant", tenant, "--role", "supervisor")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	op, err := opclient.Login(ctx, s.httpURL, "op@sipp.test", testPassword, opclient.WithLoopbackOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if err := op.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := op.SetAvailable(ctx); err != nil {
		t.Fatal(err)
	}

	// Two calls in a row to the same operator: the second replays the same
	// capture, so its RTP reuses the first one's SSRC and sequence numbers.
	for _, scenario := range []string{"uac_pcap.xml", "uac_late_offer.xml"} {
		t.Run(scenario+": pcap audio answered by the operator", func(t *testing.T) {
			var packets, silent atomic.Int64
			op.SetAudioSink(func(p *rtp.Packet) {
				if p.PayloadType != 0 {
					return
				}
				packets.Add(1)
				if bytes.Count(p.Payload, []byte{0xff}) == len(p.Payload) {
					silent.Add(1) // μ-law silence: the pcap holds speech
				}
			})
			defer op.SetAudioSink(nil)
			answered := make(chan sb.ID, 1)
			go func() {
				select {
				case in := <-op.Incoming():
					if in.From == "15550001111" && op.Accept(ctx, in.CallID) == nil {
						answered <- in.CallID
					}
					close(answered)
				case <-ctx.Done():
				}
			}()
			out, err := sipp(ctx, t, scenario, "2000", s.sipAddr)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			id, ok := <-answered
			if !ok {
				t.Fatal("the operator was not offered the SIPp call from 15550001111")
			}
			want := int64(pcapPackets(t, "/usr/share/sip-tester/g711a.pcap")) * 95 / 100
			if n := packets.Load(); n < want || silent.Load() > n/2 {
				t.Errorf("operator received %d audio packets (%d silent), want ≥ %d of the pcap's speech", n, silent.Load(), want)
			}
			rec := waitBinaryCall(t, s, key, id)
			if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.Codec != "PCMA" || int64(rec.FromCaller.Packets) < want {
				t.Errorf("record %q by %q codec %q packets %d, want completed by caller, PCMA, ≥ %d packets",
					rec.Status, rec.HangupBy, rec.Codec, rec.FromCaller.Packets, want)
			}
		})
	}

	t.Run("canceled while ringing", func(t *testing.T) {
		offered := make(chan sb.ID, 1)
		go func() {
			select {
			case in := <-op.Incoming():
				offered <- in.CallID
			case <-ctx.Done():
			}
		}()
		out, err := sipp(ctx, t, "uac_cancel.xml", "2000", s.sipAddr)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var id sb.ID
		select {
		case id = <-offered:
		case <-time.After(5 * time.Second):
			t.Fatal("the operator was never offered the canceled call")
		}
		rec := waitBinaryCall(t, s, key, id)
		if rec.Status != sb.CallCanceled || rec.SIPCode != 487 {
			t.Errorf("record %q code %d, want canceled with 487", rec.Status, rec.SIPCode)
		}
	})
}

// getJSON reads one of the binary's API resources into v.
func (s *binaryService) getJSON(t *testing.T, key, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.httpURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// binaryTrace is the answer of GET /v1/calls/{id}/trace.
type binaryTrace struct {
	SIP    []sb.SIPMessage `json:"sip"`
	Events []sb.CallEvent  `json:"events"`
}

// sent finds the first message switchboard sent that starts with prefix.
func (tr binaryTrace) sent(prefix string) (string, bool) {
	for _, m := range tr.SIP {
		if !m.Inbound && strings.HasPrefix(m.Message, prefix) {
			return m.Message, true
		}
	}
	return "", false
}

// TestSIPpFailuresLandOnTheirTaxonomy runs SIPp trunks that fail in known
// ways against the binary: each call's record names the leg and stage
// that failed, and its trace holds the messages that show it.
func TestSIPpFailuresLandOnTheirTaxonomy(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		requireDependency(t, "sipp (Debian package sip-tester)")
	}
	s := mustStartBinary(t)
	tenant := s.run(t, "", "tenant", "create", "--name", "SIPp failures")
	s.run(t, testPassword, "user", "create", "--tenant", tenant, "--email", "op@fail.test", "--role", "operator")
	s.run(t, "", "trunk", "create", "--tenant", tenant, "--name", "sipp", "--allow", "127.0.0.1/32", "--number", "2000")
	s.run(t, "the-real-password", "trunk", "create", "--tenant", tenant, "--name", "sipp-digest", "--username", "sippauth", "--number", "2001")
	key := s.run(t, "", "apikey", "create", "--tenant", tenant, "--role", "supervisor")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	op, err := opclient.Login(ctx, s.httpURL, "op@fail.test", testPassword, opclient.WithLoopbackOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if err := op.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := op.SetAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	// answer takes the next call offered to the operator.
	answer := func(from string) <-chan sb.ID {
		answered := make(chan sb.ID, 1)
		go func() {
			defer close(answered)
			select {
			case in := <-op.Incoming():
				if in.From == from && op.Accept(ctx, in.CallID) == nil {
					answered <- in.CallID
				}
			case <-ctx.Done():
			}
		}()
		return answered
	}

	t.Run("media stops mid-call", func(t *testing.T) {
		answered := answer("15550004444")
		if out, err := sipp(ctx, t, "uac_media_stops.xml", "2000", s.sipAddr); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		id, ok := <-answered
		if !ok {
			t.Fatal("the operator was not offered the call")
		}
		rec := waitBinaryCall(t, s, key, id)
		if rec.Status != sb.CallFailed || rec.FailureLeg != sb.FailedOnTrunk || rec.FailureStage != sb.StageMedia || rec.HangupBy != sb.PartySystem {
			t.Errorf("record %q, failed on %q at %q, hung up by %q; want failed on the trunk during media, by the system",
				rec.Status, rec.FailureLeg, rec.FailureStage, rec.HangupBy)
		}
		// The operator's client sends no audio of its own: the caller
		// heard nothing, which is one-way audio, and the speech the
		// caller sent is not silence.
		if rec.FromCaller.Packets < 200 || rec.FromCaller.Silent || rec.ToCaller.Packets > 10 || !slices.Equal(rec.Tags, []string{sb.TagOneWayAudio}) {
			t.Errorf("media from caller %+v, to caller %+v, tags %v: want the pcap's speech counted, nothing back, one-way audio",
				rec.FromCaller, rec.ToCaller, rec.Tags)
		}
		var tr binaryTrace
		s.getJSON(t, key, "/v1/calls/"+id.String()+"/trace", &tr)
		if bye, ok := tr.sent("BYE "); !ok {
			t.Errorf("trace has no BYE from switchboard: %d messages", len(tr.SIP))
		} else if !strings.Contains(bye, "Reason:") {
			t.Errorf("switchboard's BYE gives no reason:\n%s", bye)
		}
		if !slices.ContainsFunc(tr.Events, func(e sb.CallEvent) bool { return e.Type == sb.EventMediaTimeout }) {
			t.Errorf("no %s event among %d", sb.EventMediaTimeout, len(tr.Events))
		}
	})

	t.Run("wrong digest password", func(t *testing.T) {
		if out, err := sippFrom(ctx, t, "127.0.0.7", "uac_bad_auth.xml", "2001", s.sipAddr); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		// SIPp is done once it has the 403; the refusal is recorded just
		// after.
		var list struct {
			Calls []sb.Call `json:"calls"`
		}
		i := -1
		for deadline := time.Now().Add(10 * time.Second); i < 0; time.Sleep(50 * time.Millisecond) {
			s.getJSON(t, key, "/v1/calls?failed=true", &list)
			i = slices.IndexFunc(list.Calls, func(c sb.Call) bool { return c.To == "2001" })
			if i < 0 && time.Now().After(deadline) {
				t.Fatalf("no failed call to 2001 among %d", len(list.Calls))
			}
		}
		rec := list.Calls[i]
		if rec.FailureLeg != sb.FailedOnTrunk || rec.FailureStage != sb.StageAuth || rec.SIPCode != 403 {
			t.Errorf("record failed on %q at %q with %d, want the trunk at auth with 403", rec.FailureLeg, rec.FailureStage, rec.SIPCode)
		}
		var tr binaryTrace
		s.getJSON(t, key, "/v1/calls/"+rec.ID.String()+"/trace", &tr)
		_, challenged := tr.sent("SIP/2.0 407")
		_, refused := tr.sent("SIP/2.0 403")
		answered := slices.ContainsFunc(tr.SIP, func(m sb.SIPMessage) bool {
			return m.Inbound && strings.HasPrefix(m.Message, "INVITE ") && strings.Contains(m.Message, "Authorization: Digest")
		})
		if !challenged || !answered || !refused {
			t.Errorf("trace of the refusal (%d messages): challenge %v, answered %v, 403 %v; want all three", len(tr.SIP), challenged, answered, refused)
		}
	})

	t.Run("200 never acknowledged", func(t *testing.T) {
		answered := answer("15550003333")
		if out, err := sipp(ctx, t, "uac_no_ack.xml", "2000", s.sipAddr); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		id, ok := <-answered
		if !ok {
			t.Fatal("the operator was not offered the call")
		}
		rec := waitBinaryCall(t, s, key, id)
		if rec.Status != sb.CallFailed || rec.FailureLeg != sb.FailedOnTrunk || rec.FailureStage != sb.StageMediaSetup {
			t.Errorf("record %q, failed on %q at %q; want failed on the trunk at media setup", rec.Status, rec.FailureLeg, rec.FailureStage)
		}
		var tr binaryTrace
		s.getJSON(t, key, "/v1/calls/"+id.String()+"/trace", &tr)
		var oks []time.Time
		for _, m := range tr.SIP {
			if !m.Inbound && strings.HasPrefix(m.Message, "SIP/2.0 200") && strings.Contains(m.Message, "INVITE") {
				oks = append(oks, m.At)
			}
		}
		bye, ok := tr.sent("BYE ")
		if len(oks) < 5 || !ok || !strings.Contains(bye, "cause=408") {
			t.Errorf("trace: the 200 sent %d times, BYE %v with cause 408: %v; want the retransmissions, then the BYE", len(oks), ok, strings.Contains(bye, "cause=408"))
		}
		// RFC 3261 §13.3.1.4: retransmitted after T1, then at doubling
		// intervals up to T2: 0.5, 1, 2, 4, 4 … s. A timer may fire late
		// on a busy machine, never early.
		for i, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
			if i+1 >= len(oks) {
				break
			}
			if gap := oks[i+1].Sub(oks[i]); gap < want*9/10 || gap > want*3/2+300*time.Millisecond {
				t.Errorf("the 200's retransmission %d came %s after the one before, want %s", i+1, gap.Round(time.Millisecond), want)
			}
		}
	})
}

// waitBinaryCall polls the binary's API until the call's record is final.
func waitBinaryCall(t *testing.T, s *binaryService, key string, id sb.ID) *sb.Call {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, s.httpURL+"/v1/calls/"+id.String(), nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var c sb.Call
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, &c); err != nil {
				t.Fatal(err)
			}
			if c.Status.Ended() {
				return &c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("call %s: status %d %s, not ended", id, resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pcapPackets counts the records of a classic pcap file.
func pcapPackets(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 {
		t.Fatalf("%s is not a pcap file", path)
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if binary.BigEndian.Uint32(b) == 0xa1b2c3d4 {
		order = binary.BigEndian
	}
	n := 0
	for off := 24; off+16 <= len(b); n++ {
		off += 16 + int(order.Uint32(b[off+8:]))
	}
	return n
}

// TestSIPpTransferByREFER: a PBX that takes REFER (SIPp) calls in; the
// operator transfers the call to a SIP URI; the PBX is asked to call it
// itself, reports the target answered, and switchboard leaves the call.
func TestSIPpTransferByREFER(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		requireDependency(t, "sipp (Debian package sip-tester)")
	}
	s := mustStartBinary(t)
	tenant := s.run(t, "", "tenant", "create", "--name", "REFER")
	s.run(t, testPassword, "user", "create", "--tenant", tenant, "--email", "op@refer.test", "--role", "operator")
	s.run(t, "", "trunk", "create", "--tenant", tenant, "--name", "pbx", "--allow", "127.0.0.1/32", "--number", "2000")
	s.run(t, "", "tenant", "set", "--tenant", tenant, "--dial-targets", "127.0.0.1")
	key := s.run(t, "", "apikey", "create", "--tenant", tenant, "--role", "supervisor")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	op, err := opclient.Login(ctx, s.httpURL, "op@refer.test", testPassword, opclient.WithLoopbackOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if err := op.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := op.SetAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	transferred := make(chan sb.ID, 1)
	go func() {
		defer close(transferred)
		select {
		case in := <-op.Incoming():
			if op.Accept(ctx, in.CallID) != nil || op.WaitConnected(ctx, in.CallID) != nil {
				return
			}
			if err := op.TransferToURI(ctx, in.CallID, "sip:vm@127.0.0.1:5999"); err != nil {
				t.Errorf("transfer: %v", err)
				return
			}
			transferred <- in.CallID
		case <-ctx.Done():
		}
	}()
	if out, err := sipp(ctx, t, "uac_refer.xml", "2000", s.sipAddr); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	id, ok := <-transferred
	if !ok {
		t.Fatal("the operator did not transfer the call")
	}
	rec := waitBinaryCall(t, s, key, id)
	if rec.Status != sb.CallCompleted || rec.Reason != "transferred by REFER" || rec.HangupBy != sb.PartySystem {
		t.Errorf("record %q by %q: %q", rec.Status, rec.HangupBy, rec.Reason)
	}
	var tr binaryTrace
	s.getJSON(t, key, "/v1/calls/"+id.String()+"/trace", &tr)
	if refer, ok := tr.sent("REFER "); !ok || !strings.Contains(refer, "Refer-To: <sip:vm@127.0.0.1:5999>") {
		t.Errorf("trace has no REFER to the target: %q", refer)
	}
	if !slices.ContainsFunc(tr.Events, func(e sb.CallEvent) bool { return e.Type == sb.EventReferred }) {
		t.Errorf("no %s event", sb.EventReferred)
	}
}

// binaryCall provisions a tenant through the binary's own commands (an
// operator, a trunk from 127.0.0.1 for 2000, a supervisor API key), puts
// the operator online and places one call from a sipgo phone, which the
// operator answers. It returns the key and the call.
func binaryCall(t *testing.T, s *binaryService, name string) (key string, call *siptest.Call, in opclient.Incoming) {
	t.Helper()
	c := binaryCallWith(t, s, name, siptest.Options{Transport: "udp"})
	return c.key, c.call, c.in
}

// binaryCallOn is a call binaryCallWith placed.
type binaryCallOn struct {
	tenant, key string
	call        *siptest.Call
	in          opclient.Incoming
	op          *opclient.Client
}

// binaryCallWith is binaryCall with the phone's options and more
// arguments for `tenant create`.
func binaryCallWith(t *testing.T, s *binaryService, name string, opts siptest.Options, tenantArgs ...string) binaryCallOn {
	t.Helper()
	email := "op@" + name + ".test"
	tenant := s.run(t, "", append([]string{"tenant", "create", "--name", name}, tenantArgs...)...)
	s.run(t, testPassword, "user", "create", "--tenant", tenant, "--email", email, "--role", "operator")
	s.run(t, "", "trunk", "create", "--tenant", tenant, "--name", "pbx", "--allow", "127.0.0.1/32", "--number", "2000")
	key := s.run(t, "", "apikey", "create", "--tenant", tenant, "--role", "supervisor")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	op, err := opclient.Login(ctx, s.httpURL, email, testPassword, opclient.WithLoopbackOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	if err := op.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := op.SetAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	phone := mustPhone(t, opts)
	call, err := phone.InviteAsync(ctx, s.sipAddr, "+15550001111", "2000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { call.Close() })
	in := waitIncoming(t, op)
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := call.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return binaryCallOn{tenant: tenant, key: key, call: call, in: in, op: op}
}

// The process is killed (SIGKILL) with a call up; on restart the call's
// record is closed: failed in switchboard during media, ended at its last
// known moment, with the reason.
func TestKilledMidCallIsClosedOnRestart(t *testing.T) {
	s := mustStartBinary(t)
	key, call, in := binaryCall(t, s, "crash")
	sendPattern(t, 25, func(p []byte) error { return call.SendRTP(p, false) })

	s.kill()
	s.start(t) // the same database and instance name
	rec := waitBinaryCall(t, s, key, in.CallID)
	if rec.Status != sb.CallFailed || rec.FailureLeg != sb.FailedOnService || rec.FailureStage != sb.StageMedia ||
		rec.Reason != "the service stopped unexpectedly during the call" || rec.HangupBy != sb.PartySystem ||
		rec.AnsweredAt == nil || rec.EndedAt.Before(*rec.AnsweredAt) {
		t.Errorf("record after the crash: %q on %q at %q, %q by %q, answered %v ended %v",
			rec.Status, rec.FailureLeg, rec.FailureStage, rec.Reason, rec.HangupBy, rec.AnsweredAt, rec.EndedAt)
	}
}
