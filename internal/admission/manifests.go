package admission

import (
	"bytes"
	"encoding/base64"
	"text/template"
)

// ManifestOptions fill the deploy manifests.
type ManifestOptions struct {
	Namespace string // the guide's kube-system
	Image     string // the regctl image
	CABundle  []byte // PEM of the CA that signed the serving certificate ("" leaves a placeholder)
}

// Manifest names the deploy files, in order.
var Manifests = []string{"deployment.yaml", "service.yaml", "webhook.yaml"}

var manifestTemplates = map[string]string{
	"deployment.yaml": `# regctl verify serve: the image-verifier the guide's ValidatingWebhookConfiguration points at.
# No RBAC: the webhook reads registries, never the Kubernetes API.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: image-verifier
  namespace: {{.Namespace}}
  labels: {app: image-verifier}
spec:
  replicas: 2
  selector:
    matchLabels: {app: image-verifier}
  template:
    metadata:
      labels: {app: image-verifier}
    spec:
      automountServiceAccountToken: false
      containers:
        - name: verifier
          image: {{.Image}}
          args: ["verify", "serve", "--config", "/etc/regctl/config/config.yaml", "--tls-cert", "/etc/regctl/tls/tls.crt",
                 "--tls-key", "/etc/regctl/tls/tls.key", "--addr", ":8443", "--log-format", "json"]
          ports: [{containerPort: 8443, name: https}]
          readinessProbe: {httpGet: {path: /readyz, port: https, scheme: HTTPS}}
          livenessProbe: {httpGet: {path: /healthz, port: https, scheme: HTTPS}}
          securityContext: {runAsNonRoot: true, runAsUser: 65532, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
          volumeMounts:
            - {name: config, mountPath: /etc/regctl/config, readOnly: true}
            - {name: tls, mountPath: /etc/regctl/tls, readOnly: true}
            - {name: keys, mountPath: /etc/regctl/keys, readOnly: true}
      volumes:
        - {name: config, configMap: {name: image-verifier-config}}
        - {name: tls, secret: {secretName: image-verifier-tls}}
        - {name: keys, configMap: {name: image-verifier-keys}}
`,
	"service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: image-verifier
  namespace: {{.Namespace}}
spec:
  selector: {app: image-verifier}
  ports:
    - {port: 443, targetPort: https, name: https}   # the webhook's clientConfig names no port: 443
`,
	"webhook.yaml": `# The guide's §7.2 ValidatingWebhookConfiguration, unmodified apart from the caBundle.
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: image-verification
webhooks:
  - name: verify.images.security
    clientConfig:
      service:
        name: image-verifier
        namespace: {{.Namespace}}
        path: "/verify"
      caBundle: {{.CABundle}}
    rules:
      - operations: ["CREATE", "UPDATE"]
        apiGroups: [""]
        apiVersions: ["v1"]
        resources: ["pods"]
    admissionReviewVersions: ["v1", "v1beta1"]
    sideEffects: None
    failurePolicy: Fail
`,
}

// RenderManifests writes the deploy manifests, each starting with "---".
func RenderManifests(o ManifestOptions) (map[string][]byte, error) {
	ca := "REPLACE_WITH_BASE64_CA_PEM  # regctl verify serve --print-manifests --ca-file ca.pem fills it"
	if len(o.CABundle) > 0 {
		ca = base64.StdEncoding.EncodeToString(o.CABundle)
	}
	data := struct{ Namespace, Image, CABundle string }{o.Namespace, o.Image, ca}
	out := map[string][]byte{}
	for _, n := range Manifests {
		t, err := template.New(n).Parse(manifestTemplates[n])
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		b.WriteString("---\n")
		if err := t.Execute(&b, data); err != nil {
			return nil, err
		}
		out[n] = b.Bytes()
	}
	return out, nil
}
