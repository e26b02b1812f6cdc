package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The deployment files of deploy/ and the Dockerfile are checked against
// the service itself: every SWITCHBOARD_* variable they set must be a
// setting serve knows, and together they must make a configuration serve
// accepts.

// checkSettings fails the test unless env (SWITCHBOARD_* variables; others
// are ignored) names only known settings and validates as serve's
// configuration.
func checkSettings(t *testing.T, where string, env map[string]string) *Config {
	t.Helper()
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	config := configFlags(fs, nil)
	flagOf := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if i := strings.LastIndex(f.Usage, "[SWITCHBOARD_"); i >= 0 {
			flagOf[strings.TrimSuffix(f.Usage[i+1:], "]")] = f.Name
		}
	})
	for name, value := range env {
		if !strings.HasPrefix(name, "SWITCHBOARD_") {
			continue
		}
		f, ok := flagOf[name]
		if !ok {
			t.Errorf("%s sets %s, which is no setting of switchboard serve", where, name)
			continue
		}
		if err := fs.Set(f, value); err != nil {
			t.Fatal(err)
		}
	}
	c, err := config()
	if err != nil {
		t.Fatalf("%s: switchboard serve would refuse its settings:\n%v", where, err)
	}
	return c
}

// yamlDocuments decodes each document of a rendered manifest, up to the
// first that does not decode.
func yamlDocuments[T any](out []byte) []T {
	var docs []T
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o T
		if err := dec.Decode(&o); err != nil {
			return docs
		}
		docs = append(docs, o)
	}
}

// findTool finds a command on PATH or in Go's bin folder (where deps.sh
// builds the Go ones), or fails the test under CI.
func findTool(t *testing.T, name, what string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	requireDependency(t, what)
	return ""
}

// byKind decodes rendered manifests (YAML documents) into T, by the kind
// each names; documents with no kind are left out.
func byKind[T any](manifests []byte, kind func(T) string) map[string][]T {
	out := map[string][]T{}
	for _, o := range yamlDocuments[T](manifests) {
		if k := kind(o); k != "" {
			out[k] = append(out[k], o)
		}
	}
	return out
}

// dockerfile is the repository's Dockerfile, read into its instructions
// (continuation lines joined).
type dockerfile [][2]string // instruction, arguments

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out dockerfile
	var line string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if line == "" && (s == "" || strings.HasPrefix(s, "#")) {
			continue
		}
		if strings.HasSuffix(s, "\\") {
			line += strings.TrimSuffix(s, "\\") + " "
			continue
		}
		line += s
		ins, args, _ := strings.Cut(line, " ")
		out = append(out, [2]string{strings.ToUpper(ins), strings.TrimSpace(args)})
		line = ""
	}
	return out
}

// The image's build step, run as the Dockerfile runs it, makes a static
// binary (no dynamic loader, no shared libraries: it runs on distroless
// static); the final stage runs it as a non-root user, with settings serve
// accepts.
func TestDockerfileMakesAStaticNonRootImage(t *testing.T) {
	df := readDockerfile(t)
	var build, user, entry, lastFrom string
	env := map[string]string{}
	for _, ins := range df {
		switch ins[0] {
		case "FROM":
			lastFrom = ins[1]
			env, user, entry = map[string]string{}, "", ""
		case "RUN":
			if strings.Contains(ins[1], "go build") {
				build = ins[1]
			}
		case "USER":
			user = ins[1]
		case "ENTRYPOINT":
			entry = ins[1]
		case "ENV":
			for _, kv := range regexp.MustCompile(`(\w+)=(\S+)`).FindAllStringSubmatch(ins[1], -1) {
				env[kv[1]] = kv[2]
			}
		}
	}
	if !strings.Contains(lastFrom, "distroless/static") {
		t.Errorf("final stage FROM %s, want distroless static", lastFrom)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("final stage USER %q, want a non-root user", user)
	}
	if entry != `["/switchboard"]` {
		t.Errorf("ENTRYPOINT %s", entry)
	}
	env["SWITCHBOARD_DATABASE_URL"] = "postgres://switchboard@db/switchboard"
	checkSettings(t, "Dockerfile", env)

	if !strings.Contains(build, "-o /out/switchboard") {
		t.Fatalf("no go build with -o /out/switchboard in the Dockerfile: %q", build)
	}
	bin := filepath.Join(t.TempDir(), "switchboard")
	cmd := exec.Command("sh", "-c", strings.Replace(build, "-o /out/switchboard", "-o "+bin, 1))
	cmd.Dir = filepath.Join("..", "..")
	// The build arguments, as docker build --build-arg passes them.
	cmd.Env = append(os.Environ(), "VERSION=1.2.3-image", "REVISION=0123abcd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build step: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary wants a dynamic loader (PT_INTERP): it will not run on distroless static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if out, err := exec.Command(bin, "help").Output(); err != nil || !strings.Contains(string(out), "drain") {
		t.Errorf("the built binary's help: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.HasPrefix(string(out), "switchboard 1.2.3-image (revision 0123abcd, go") {
		t.Errorf("the built binary's version: %v\n%s", err, out)
	}
}

// deploy/compose.yaml validates with docker-compose, refuses to start
// without its secrets, and gives switchboard settings serve accepts, with
// the published RTP range matching the one it uses.
func TestComposeFileValidates(t *testing.T) {
	compose := findTool(t, "docker-compose", "docker-compose (Debian package docker-compose)")
	file := filepath.Join("..", "..", "deploy", "compose.yaml")
	secrets := []string{"SWITCHBOARD_KEYRING=" + testKeyring, "SWITCHBOARD_DB_PASSWORD=dbsecret", "SWITCHBOARD_S3_SECRET_KEY=s3secret1"}
	config := func(env ...string) ([]byte, error) {
		cmd := exec.Command(compose, "-f", file, "config")
		cmd.Env = append(os.Environ(), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return stderr.Bytes(), err
		}
		return out, nil
	}
	for i := range secrets {
		without := append(append([]string{}, secrets[:i]...), secrets[i+1:]...)
		name, _, _ := strings.Cut(secrets[i], "=")
		if out, err := config(without...); err == nil || !strings.Contains(string(out), name) {
			t.Errorf("compose file without %s: %v %s; want refused, naming it", name, err, out)
		}
	}
	out, err := config(secrets...)
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Ports       []struct {
				Published any    `yaml:"published"`
				Target    any    `yaml:"target"`
				Protocol  string `yaml:"protocol"`
			} `yaml:"ports"`
			DependsOn map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgres", "minio", "bucket", "switchboard"} {
		if _, ok := doc.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
	sbs := doc.Services["switchboard"]
	if sbs.DependsOn["postgres"].Condition != "service_healthy" || sbs.DependsOn["bucket"].Condition != "service_completed_successfully" {
		t.Errorf("switchboard starts before its database and bucket are ready: %+v", sbs.DependsOn)
	}
	c := checkSettings(t, "compose.yaml", sbs.Environment)
	if c.Recordings != "s3" || c.Keyring == nil {
		t.Errorf("compose's switchboard records to %q with keyring %v, want s3 with a keyring", c.Recordings, c.Keyring != nil)
	}
	published := map[string]bool{}
	for _, p := range sbs.Ports {
		published[fmt.Sprintf("%v/%s", p.Target, p.Protocol)] = true
	}
	for _, want := range []string{"8080/tcp", "5060/udp", "5060/tcp"} {
		if !published[want] {
			t.Errorf("compose does not publish %s", want)
		}
	}
	if published["9090/tcp"] {
		t.Error("compose publishes /metrics (9090/tcp): it shows volumes across tenants")
	}
	if c.RTPPorts.Max-c.RTPPorts.Min < 100 {
		t.Errorf("RTP ports %v: room for fewer than 50 calls", c.RTPPorts)
	}
	for p := c.RTPPorts.Min; p <= c.RTPPorts.Max; p++ {
		if !published[fmt.Sprintf("%d/udp", p)] {
			t.Fatalf("compose does not publish RTP port %d/udp of %v", p, c.RTPPorts)
		}
	}
}

// The Helm chart lints and renders: a StatefulSet on host networking with
// probes on /healthz and /readyz, a preStop that drains, a grace period
// longer than the drain, non-root; its Services, ConfigMap, Secret and
// PodDisruptionBudget; and the container's settings (ConfigMap, Secret and
// its own variables together) are ones serve accepts. Without a database
// URL it refuses to render.
func TestHelmChartRenders(t *testing.T) {
	helm := findTool(t, "helm", "helm (scripts/deps.sh builds it)")
	chart := filepath.Join("..", "..", "deploy", "helm", "switchboard")
	values := []string{
		"--set", "secrets.SWITCHBOARD_DATABASE_URL=postgres://switchboard:pw@db:5432/switchboard",
		"--set", "secrets.SWITCHBOARD_KEYRING=" + testKeyring,
		"--set", "secrets.SWITCHBOARD_CLUSTER_SECRET=a-cluster-secret-of-32-characters",
		"--set", "secrets.SWITCHBOARD_S3_ACCESS_KEY=ak", "--set", "secrets.SWITCHBOARD_S3_SECRET_KEY=sk",
		"--set", "drainTimeoutSeconds=120",
	}
	if out, err := exec.Command(helm, append([]string{"lint", "--strict", chart}, values...)...).CombinedOutput(); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	render := func(args ...string) ([]byte, error) {
		return exec.Command(helm, append([]string{"template", "sb", chart, "--namespace", "voice", "--kube-version", "1.31.0"}, args...)...).CombinedOutput()
	}
	if out, err := render(); err == nil || !strings.Contains(string(out), "SWITCHBOARD_DATABASE_URL") {
		t.Errorf("rendered without a database URL: %v\n%s", err, out)
	}
	out, err := render(values...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}

	type probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
	}
	type object struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
		Spec       struct {
			MaxUnavailable any `yaml:"maxUnavailable"`
			ClusterIP      string
			Template       struct {
				Spec struct {
					HostNetwork                   bool `yaml:"hostNetwork"`
					TerminationGracePeriodSeconds int  `yaml:"terminationGracePeriodSeconds"`
					SecurityContext               struct {
						RunAsNonRoot bool `yaml:"runAsNonRoot"`
						RunAsUser    int  `yaml:"runAsUser"`
					} `yaml:"securityContext"`
					Containers []struct {
						Args    []string `yaml:"args"`
						EnvFrom []struct {
							ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
							SecretRef    *struct{ Name string } `yaml:"secretRef"`
						} `yaml:"envFrom"`
						Env []struct {
							Name  string `yaml:"name"`
							Value string `yaml:"value"`
						} `yaml:"env"`
						StartupProbe   probe `yaml:"startupProbe"`
						LivenessProbe  probe `yaml:"livenessProbe"`
						ReadinessProbe probe `yaml:"readinessProbe"`
						Lifecycle      struct {
							PreStop struct {
								Exec struct {
									Command []string `yaml:"command"`
								} `yaml:"exec"`
							} `yaml:"preStop"`
						} `yaml:"lifecycle"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	objects := byKind(out, func(o object) string { return o.Kind })
	for kind, n := range map[string]int{"StatefulSet": 1, "Service": 2, "ConfigMap": 1, "Secret": 1, "PodDisruptionBudget": 1} {
		if len(objects[kind]) != n {
			t.Errorf("%d %s rendered, want %d", len(objects[kind]), kind, n)
		}
	}
	if len(objects["StatefulSet"]) != 1 || len(objects["ConfigMap"]) != 1 || len(objects["Secret"]) != 1 {
		t.FailNow()
	}
	pod := objects["StatefulSet"][0].Spec.Template.Spec
	if !pod.HostNetwork {
		t.Error("pods without host networking: SIP and RTP would need a port plan")
	}
	if pod.TerminationGracePeriodSeconds <= 120 {
		t.Errorf("grace period %d s, not longer than the 120 s drain", pod.TerminationGracePeriodSeconds)
	}
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("pod security context %+v, want non-root", pod.SecurityContext)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	for name, p := range map[string]probe{"startup": ctr.StartupProbe, "liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe} {
		want := "/healthz"
		if name == "readiness" {
			want = "/readyz"
		}
		if p.HTTPGet.Path != want {
			t.Errorf("%s probe on %q, want %s", name, p.HTTPGet.Path, want)
		}
	}
	if got := strings.Join(ctr.Lifecycle.PreStop.Exec.Command, " "); got != "/switchboard drain" {
		t.Errorf("preStop %q, want /switchboard drain", got)
	}

	env := map[string]string{}
	cm, secret := objects["ConfigMap"][0], objects["Secret"][0]
	for _, from := range ctr.EnvFrom {
		switch {
		case from.ConfigMapRef != nil && from.ConfigMapRef.Name == cm.Metadata.Name:
			for k, v := range cm.Data {
				env[k] = v
			}
		case from.SecretRef != nil && from.SecretRef.Name == secret.Metadata.Name:
			for k, v := range secret.StringData {
				env[k] = v
			}
		default:
			t.Errorf("envFrom %+v names nothing rendered", from)
		}
	}
	downward := strings.NewReplacer("$(HOST_IP)", "10.1.2.3", "$(POD_NAME)", "sb-switchboard-0")
	for _, e := range ctr.Env {
		env[e.Name] = downward.Replace(e.Value)
	}
	c := checkSettings(t, "the Helm chart", env)
	if c.Instance != "sb-switchboard-0" || c.ClusterAddr != "10.1.2.3:5060" || len(c.ClusterSecret) == 0 || c.DrainTimeout.Seconds() != 120 {
		t.Errorf("rendered pod's settings: instance %q, cluster %q (secret %v), drain %v",
			c.Instance, c.ClusterAddr, len(c.ClusterSecret) > 0, c.DrainTimeout)
	}
	if c.PIDFile == "" {
		t.Error("no pid file: the preStop drain would find nothing to drain")
	}
	if c.MetricsAddr != "10.1.2.3:9090" {
		t.Errorf("metrics on %q, want the node's address and the annotated port 9090", c.MetricsAddr)
	}
}

// The systemd unit passes systemd-analyze verify without a warning, and
// its example settings name only settings serve knows.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := findTool(t, "systemd-analyze", "systemd-analyze (Debian package systemd)")
	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", "switchboard.service"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := filepath.Abs(mustBuildBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("ExecStop=/usr/local/bin/switchboard drain")) {
		t.Error("the unit does not drain on stop")
	}
	// verify wants the binary where ExecStart names it.
	dir := t.TempDir()
	path := filepath.Join(dir, "switchboard.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/switchboard"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	envFile, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", "switchboard.env"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(envFile), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	for _, line := range regexp.MustCompile(`(?m)^Environment=(\w+)=(.*)$`).FindAllSubmatch(unit, -1) {
		env[string(line[1])] = string(line[2])
	}
	env["SWITCHBOARD_KEYRING"] = testKeyring // the file's placeholder is to be replaced
	c := checkSettings(t, "switchboard.env", env)
	if c.PIDFile == "" {
		t.Error("no pid file: ExecStop's drain would find nothing to drain")
	}
}
