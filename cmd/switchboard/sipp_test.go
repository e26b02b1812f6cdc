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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/opclient"
)

// binaryService is the real switchboard binary, run as `switchboard serve`
// on ports of its own choosing.
type binaryService struct {
	bin     string
	env     []string
	httpURL string
	sipAddr string
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

var listeningRE = regexp.MustCompile(`"msg":"listening","http":"([^"]+)","sip":"([^"]+)"`)

// mustStartBinary runs `switchboard serve` against a fresh database and
// waits until it says where it listens.
func mustStartBinary(t *testing.T) *binaryService {
	t.Helper()
	s := &binaryService{bin: mustBuildBinary(t)}
	s.env = append(os.Environ(),
		"SWITCHBOARD_DATABASE_URL="+testenv.DatabaseURL(t),
		"SWITCHBOARD_HTTP_ADDR=127.0.0.1:0",
		"SWITCHBOARD_SIP_ADDR=127.0.0.1:0",
		"SWITCHBOARD_RTP_PORTS=",
		"SWITCHBOARD_WEBRTC_LOOPBACK=true",
		"SWITCHBOARD_RING_TIMEOUT=5s",
		"SWITCHBOARD_DRAIN_TIMEOUT=2s",
	)
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
		s.httpURL, s.sipAddr = "http://"+m[1], m[2]
	case err := <-exited:
		t.Fatalf("switchboard serve exited early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("switchboard serve did not start listening")
	}
	return s
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

// freeUDPPorts returns a port p with p..p+3 free for UDP on 127.0.0.1, as
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
	dir := t.TempDir()
	path, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", scenario))
	if err != nil {
		return nil, err
	}
	sigPort, mediaPort := freeUDPPort(t), freeUDPPort(t)
	cmd := exec.CommandContext(ctx, "sipp",
		"-sf", path,
		"-s", number, "-i", "127.0.0.1", "-mi", "127.0.0.1",
		"-p", fmt.Sprint(sigPort), "-mp", fmt.Sprint(mediaPort),
		"-m", "1", "-l", "1", "-timeout", "40s", "-timeout_error", "-nostdin",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		target)
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
