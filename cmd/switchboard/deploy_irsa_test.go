package main

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// On EKS the chart gives the pods a ServiceAccount annotated with an IAM
// role (IRSA) and no S3 keys: the store then takes the role's credentials
// from the SDK's default chain (recordings.TestS3CredentialsFromTheEnvironment).
// Without serviceAccount.create the pods keep the namespace's default.
func TestHelmChartServiceAccountForIRSA(t *testing.T) {
	helm := findTool(t, "helm", "helm (scripts/deps.sh builds it)")
	chart := filepath.Join("..", "..", "deploy", "helm", "switchboard")
	const role = "arn:aws:iam::123456789012:role/switchboard-recordings"
	type object struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name        string            `yaml:"name"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		StringData map[string]string `yaml:"stringData"`
		Spec       struct {
			Template struct {
				Spec struct {
					ServiceAccountName string `yaml:"serviceAccountName"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	render := func(args ...string) map[string]object {
		t.Helper()
		out, err := exec.Command(helm, append([]string{"template", "sb", chart, "--namespace", "voice", "--kube-version", "1.31.0",
			"--set", "secrets.SWITCHBOARD_DATABASE_URL=postgres://switchboard:pw@db:5432/switchboard",
			"--set", "secrets.SWITCHBOARD_KEYRING=" + testKeyring,
			"--set", "secrets.SWITCHBOARD_CLUSTER_SECRET=a-cluster-secret-of-32-characters"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, out)
		}
		objects := map[string]object{}
		for _, o := range yamlDocuments[object](out) {
			objects[o.Kind] = o
		}
		return objects
	}
	objects := render("--set", "serviceAccount.create=true", "--set", `serviceAccount.annotations.eks\.amazonaws\.com/role-arn=`+role)
	sa, ok := objects["ServiceAccount"]
	if !ok || sa.Metadata.Annotations["eks.amazonaws.com/role-arn"] != role {
		t.Fatalf("ServiceAccount %+v, want one annotated with the role", sa)
	}
	if got := objects["StatefulSet"].Spec.Template.Spec.ServiceAccountName; got != sa.Metadata.Name {
		t.Errorf("pods run as %q, want the ServiceAccount %q", got, sa.Metadata.Name)
	}
	for _, k := range []string{"SWITCHBOARD_S3_ACCESS_KEY", "SWITCHBOARD_S3_SECRET_KEY"} {
		if _, ok := objects["Secret"].StringData[k]; ok {
			t.Errorf("the Secret holds %s though none was given", k)
		}
	}
	objects = render()
	if _, ok := objects["ServiceAccount"]; ok {
		t.Error("a ServiceAccount rendered without serviceAccount.create")
	}
	if got := objects["StatefulSet"].Spec.Template.Spec.ServiceAccountName; got != "default" {
		t.Errorf("pods run as %q, want default", got)
	}
}
