// kube-cluster runs a real Kubernetes control plane on loopback for device-descheduler's
// tests: an embedded etcd and the upstream kube-apiserver, kube-scheduler and
// kube-controller-manager, built from the k8s.io/kubernetes module (see ../go.mod).
//
//	kube-cluster up [--dir DIR] [--device-taint-eviction] [--controllers LIST]
//	kube-cluster kube-apiserver|kube-scheduler|kube-controller-manager [FLAGS]
//
// `up` makes a temporary directory (or uses --dir, which must be empty or absent),
// writes certificates, tokens and kubeconfigs there, starts etcd in this process and
// the three components as child processes of this same binary (each upstream command
// owns process-wide state: flags, feature gates, metrics registries, so one process
// each), waits until the API server is ready and the scheduler and controller-manager
// hold their leases, and prints one line
//
//	READY url=https://127.0.0.1:PORT dir=DIR kubeconfig=DIR/kubeconfig-admin
//
// On SIGTERM or SIGINT it stops the components (SIGTERM, then SIGKILL after 10 s),
// stops etcd and removes the directory it made. The components also die with it
// (Pdeathsig), so a killed launcher leaves no process behind.
//
// The other subcommands are the upstream commands themselves, unchanged; tests use
// `kube-cluster kube-controller-manager` to run a second controller-manager with
// only the DRA device-taint eviction controller.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// The controllers the tests need. node-lifecycle-controller is left out on purpose:
// there is no kubelet, so it would mark every node unreachable, taint it and empty it.
const defaultControllers = "replicaset-controller,deployment-controller,disruption-controller," +
	"garbage-collector-controller,serviceaccount-token-controller,serviceaccount-controller," +
	"namespace-controller,root-ca-certificate-publisher-controller,resourceclaim-controller"

const deviceTaintEviction = "device-taint-eviction-controller"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "up":
		os.Exit(up(os.Args[2:]))
	case "kube-apiserver":
		c := apiserver.NewAPIServerCommand()
		c.SetArgs(os.Args[2:])
		os.Exit(cli.Run(c))
	case "kube-scheduler":
		c := scheduler.NewSchedulerCommand()
		c.SetArgs(os.Args[2:])
		os.Exit(cli.Run(c))
	case "kube-controller-manager":
		c := kcm.NewControllerManagerCommand()
		c.SetArgs(os.Args[2:])
		os.Exit(cli.Run(c))
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kube-cluster up [--dir DIR] [--device-taint-eviction] [--controllers LIST]\n"+
		"       kube-cluster kube-apiserver|kube-scheduler|kube-controller-manager [FLAGS]")
	os.Exit(2)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "kube-cluster: "+format+"\n", a...)
}

// ---------------------------------------------------------------- up

// proc is one component; done is closed once it has exited (and been reaped).
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

type cluster struct {
	dir      string
	ownDir   bool
	procs    []*proc
	etcd     *embed.Etcd
	url      string
	adminTok string
	caPool   *x509.CertPool
}

func up(args []string) int {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	dir := fs.String("dir", "", "directory for certificates, kubeconfigs, logs and etcd data (default: a new temporary directory, removed on exit)")
	dte := fs.Bool("device-taint-eviction", false, "also run kube-controller-manager's DRA device-taint eviction controller")
	controllers := fs.String("controllers", defaultControllers, "kube-controller-manager --controllers")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up when the control plane is not ready this long after the start")
	verbosity := fs.Int("v", 1, "log verbosity of the components (their logs are in DIR/logs)")
	_ = fs.Parse(args)

	runtime.LockOSThread() // see spawn: the components' Pdeathsig follows this thread
	c := &cluster{}
	start := time.Now()
	var err error
	if *dir == "" {
		c.dir, err = os.MkdirTemp("", "kube-cluster-")
		c.ownDir = true
	} else {
		c.dir, err = filepath.Abs(*dir)
		if err == nil {
			err = os.MkdirAll(c.dir, 0o700)
		}
	}
	if err != nil {
		logf("%v", err)
		return 1
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	// ctx ends on SIGTERM or SIGINT; the start-up alone is also bounded by --timeout.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sigs
		cancel()
	}()
	startCtx, startCancel := context.WithTimeout(ctx, *timeout)
	defer startCancel()

	ctl := *controllers
	if *dte {
		ctl += "," + deviceTaintEviction
	}
	err = c.start(startCtx, ctl, *verbosity)
	if err != nil {
		logf("%v", err)
		c.stop()
		return 1
	}
	logf("control plane ready in %.1fs (logs in %s/logs)", time.Since(start).Seconds(), c.dir)
	fmt.Printf("READY url=%s dir=%s kubeconfig=%s\n", c.url, c.dir, filepath.Join(c.dir, "kubeconfig-admin"))
	os.Stdout.Sync()

	// Run until a signal, or until a component dies (then stop everything: a partial
	// control plane would only make tests fail in confusing ways).
	died := make(chan string, len(c.procs))
	for _, p := range c.procs {
		go func(p *proc) {
			<-p.done
			died <- p.name
		}(p)
	}
	rc := 0
	select {
	case <-ctx.Done():
	case name := <-died:
		logf("%s exited; stopping (see %s/logs/%s.log)", name, c.dir, name)
		rc = 1
	}
	c.stop()
	return rc
}

func (c *cluster) path(name string) string { return filepath.Join(c.dir, name) }

func (c *cluster) start(ctx context.Context, controllers string, v int) error {
	for _, d := range []string{"pki", "logs", "etcd"} {
		if err := os.MkdirAll(c.path(d), 0o700); err != nil {
			return err
		}
	}
	if err := c.writePKI(); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	if err := c.startEtcd(etcdURL, fmt.Sprintf("http://127.0.0.1:%d", ports[1])); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	c.url = fmt.Sprintf("https://127.0.0.1:%d", ports[2])

	tokens := map[string]string{}
	var csv strings.Builder
	for _, u := range []struct{ name, groups string }{
		{"admin", "system:masters"},
		{"system:kube-scheduler", ""},
		{"system:kube-controller-manager", ""},
	} {
		tokens[u.name] = randomHex(24)
		fmt.Fprintf(&csv, "%s,%s,%s", tokens[u.name], u.name, u.name)
		if u.groups != "" {
			fmt.Fprintf(&csv, ",\"%s\"", u.groups)
		}
		csv.WriteString("\n")
	}
	c.adminTok = tokens["admin"]
	if err := os.WriteFile(c.path("pki/tokens.csv"), []byte(csv.String()), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(c.path("admin-token"), []byte(c.adminTok+"\n"), 0o600); err != nil {
		return err
	}
	// Metadata of every request, so that tests can see each call the controller made
	// and its answer (what the test API server's request log gives).
	auditPolicy := "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"
	if err := os.WriteFile(c.path("audit-policy.yaml"), []byte(auditPolicy), 0o600); err != nil {
		return err
	}
	for name, tok := range map[string]string{"kubeconfig-admin": tokens["admin"],
		"kubeconfig-scheduler":          tokens["system:kube-scheduler"],
		"kubeconfig-controller-manager": tokens["system:kube-controller-manager"]} {
		if err := c.writeKubeconfig(name, "token: "+tok); err != nil {
			return err
		}
	}
	if err := c.writeKubeconfig("kubeconfig-cert", "client-certificate: pki/admin.crt\n    client-key: pki/admin.key"); err != nil {
		return err
	}

	verb := fmt.Sprintf("--v=%d", v)
	if err := c.spawn("kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports[2]),
		"--cert-dir="+c.path("pki/apiserver"),
		"--tls-cert-file="+c.path("pki/server.crt"), "--tls-private-key-file="+c.path("pki/server.key"),
		"--client-ca-file="+c.path("pki/ca.crt"),
		"--token-auth-file="+c.path("pki/tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.path("pki/sa.pub"),
		"--service-account-signing-key-file="+c.path("pki/sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		// The `kubernetes` Service would point at 127.0.0.1, which Endpoints validation
		// refuses; nothing in the tests uses it.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		// This admission plugin puts node.kubernetes.io/not-ready:NoSchedule on every new
		// Node, and only the node lifecycle controller (off, see defaultControllers) would
		// take it away once the Node is Ready: the tests' Nodes would never be schedulable.
		"--disable-admission-plugins=TaintNodesByCondition",
		"--profiling=false",
		"--audit-log-path="+c.path("logs/audit.log"),
		"--audit-policy-file="+c.path("audit-policy.yaml"),
		"--audit-log-mode=blocking",
		verb,
	); err != nil {
		return err
	}
	if err := c.waitAPIServer(ctx); err != nil {
		return err
	}
	if err := c.spawn("kube-scheduler",
		"--kubeconfig="+c.path("kubeconfig-scheduler"),
		"--authentication-kubeconfig="+c.path("kubeconfig-scheduler"),
		"--authorization-kubeconfig="+c.path("kubeconfig-scheduler"),
		"--secure-port=0",
		"--leader-elect=true",
		verb,
	); err != nil {
		return err
	}
	if err := c.spawn("kube-controller-manager",
		"--kubeconfig="+c.path("kubeconfig-controller-manager"),
		"--authentication-kubeconfig="+c.path("kubeconfig-controller-manager"),
		"--authorization-kubeconfig="+c.path("kubeconfig-controller-manager"),
		"--secure-port=0",
		"--leader-elect=true",
		"--controllers="+controllers,
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+c.path("pki/sa.key"),
		"--root-ca-file="+c.path("pki/ca.crt"),
		"--cluster-signing-cert-file="+c.path("pki/ca.crt"),
		"--cluster-signing-key-file="+c.path("pki/ca.key"),
		verb,
	); err != nil {
		return err
	}
	for _, lease := range []string{"kube-scheduler", "kube-controller-manager"} {
		if err := c.waitLease(ctx, lease); err != nil {
			return err
		}
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (c *cluster) startEtcd(clientURL, peerURL string) error {
	cfg := embed.NewConfig()
	cfg.Name = "default"
	cfg.Dir = c.path("etcd")
	cu, err := parseURLs(clientURL)
	if err != nil {
		return err
	}
	pu, err := parseURLs(peerURL)
	if err != nil {
		return err
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = cu, cu
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = pu, pu
	cfg.InitialCluster = "default=" + peerURL
	// Test data: durability across a power cut is worth nothing here, speed is.
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{c.path("logs/etcd.log")}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	c.etcd = e
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("not ready after 60s (see %s)", c.path("logs/etcd.log"))
	}
}

func (c *cluster) spawn(name string, args ...string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	log, err := os.OpenFile(c.path("logs/"+name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = c.dir
	// The component dies with the launcher, however the launcher ends. (Pdeathsig follows
	// the spawning thread: up() locks the main goroutine to the main thread.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return nil
}

func (c *cluster) client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.caPool}}}
}

func (c *cluster) get(path string) (int, []byte, error) {
	req, _ := http.NewRequest("GET", c.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.adminTok)
	resp, err := c.client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf strings.Builder
	b := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(b)
		buf.Write(b[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, []byte(buf.String()), nil
}

func (c *cluster) alive() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v); see %s", p.name, p.cmd.ProcessState, c.path("logs/"+p.name+".log"))
		default:
		}
	}
	return nil
}

func (c *cluster) waitFor(ctx context.Context, what string, ok func() bool) error {
	for {
		if err := c.alive(); err != nil {
			return err
		}
		if ok() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *cluster) waitAPIServer(ctx context.Context) error {
	return c.waitFor(ctx, "kube-apiserver /readyz", func() bool {
		code, _, err := c.get("/readyz")
		return err == nil && code == 200
	})
}

func (c *cluster) waitLease(ctx context.Context, name string) error {
	return c.waitFor(ctx, "the "+name+" lease", func() bool {
		code, body, err := c.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/" + name)
		if err != nil || code != 200 {
			return false
		}
		var l struct {
			Spec struct {
				HolderIdentity string `json:"holderIdentity"`
			} `json:"spec"`
		}
		return json.Unmarshal(body, &l) == nil && l.Spec.HolderIdentity != ""
	})
}

func (c *cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		_ = c.procs[i].cmd.Process.Signal(syscall.SIGTERM)
	}
	timeout := time.After(10 * time.Second)
	for _, p := range c.procs {
		select {
		case <-p.done:
		case <-timeout:
			logf("%s did not stop within 10s of SIGTERM; killing it", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if c.etcd != nil {
		c.etcd.Close()
	}
	if c.ownDir {
		_ = os.RemoveAll(c.dir)
	}
}

// ---------------------------------------------------------------- files

func (c *cluster) writeKubeconfig(name, user string) error {
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kube-cluster
  cluster:
    server: %s
    certificate-authority: pki/ca.crt
users:
- name: user
  user:
    %s
contexts:
- name: kube-cluster
  context:
    cluster: kube-cluster
    user: user
current-context: kube-cluster
`, c.url, user)
	return os.WriteFile(c.path(name), []byte(kc), 0o600)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func (c *cluster) writePKI() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kube-cluster-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	c.caPool = x509.NewCertPool()
	c.caPool.AddCert(caCert)
	if err := writePEM(c.path("pki/ca.crt"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	caKeyDER, _ := x509.MarshalECPrivateKey(caKey)
	if err := writePEM(c.path("pki/ca.key"), "EC PRIVATE KEY", caKeyDER); err != nil {
		return err
	}
	leaf := func(name string, serial int64, tmpl *x509.Certificate) error {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(7*24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			return err
		}
		kd, _ := x509.MarshalECPrivateKey(k)
		if err := writePEM(c.path("pki/"+name+".crt"), "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(c.path("pki/"+name+".key"), "EC PRIVATE KEY", kd)
	}
	if err := leaf("server", 2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
	}); err != nil {
		return err
	}
	if err := leaf("admin", 3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-cluster-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return err
	}
	// The service-account signing key (RSA: what every consumer of the tokens accepts).
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	if err := writePEM(c.path("pki/sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(sa)); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	return writePEM(c.path("pki/sa.pub"), "PUBLIC KEY", pub)
}

func parseURLs(s string) ([]url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	return []url.URL{*u}, nil
}
