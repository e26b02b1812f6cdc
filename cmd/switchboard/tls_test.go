package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// mustCertificate writes a self-signed certificate for 127.0.0.1 and
// returns its files and a pool that trusts it.
func mustCertificate(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "switchboard test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

func TestCallOverTLS(t *testing.T) {
	certFile, keyFile, roots := mustCertificate(t)
	m := mustStartService(t, map[string]string{"sip-tls-addr": "127.0.0.1:0", "tls-cert": certFile, "tls-key": keyFile})
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "tls", TLSConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var call *siptest.Call
	go func() {
		var err error
		call, err = phone.Invite(ctx, m.SIPTLSAddr(), "3000", "2000")
		done <- err
	}()
	in := waitIncoming(t, op)
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("INVITE over TLS: %v", err)
	}
	defer call.Close()
	if err := op.Hangup(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("no BYE over TLS")
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if !strings.HasPrefix(rec.Source, "tls:") || rec.Status != sb.CallCompleted {
		t.Errorf("record source %q status %q, want tls and completed", rec.Source, rec.Status)
	}
}
