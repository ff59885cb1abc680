package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// devWarning goes to stderr with everything the token commands do: a
// local key that mints tokens for any tenant must never reach production.
const devWarning = "WARNING: DEV ONLY — tokens signed with a local key file; whoever holds the key can act as any tenant. Use your identity provider in production."

func newTokenCmd(g *globals) *cobra.Command {
	c := groupCmd("token", "DEV ONLY: a local token issuer for demos and tests",
		newTokenDevIssuerCmd(g), newTokenIssueCmd(g))
	c.Long = devWarning
	return c
}

type devIssuerFlags struct {
	out, issuer, alg, audience, base string
}

func newTokenDevIssuerCmd(g *globals) *cobra.Command {
	f := devIssuerFlags{}
	c := &cobra.Command{
		Use:   "dev-issuer",
		Short: "DEV ONLY: create a signing key and print the MeshConfig that trusts it",
		Long: devWarning + `

Creates a private key in --out (kept if the file exists, so re-running is
harmless) and prints a MeshConfig whose spec.jwt trusts it as a platform
issuer (inline jwks, tenantClaim tenant_id, rolesClaim roles). Apply it:

  tenantmesh token dev-issuer --out dev-issuer.pem --issuer https://dev-issuer.local | tenantmesh meshconfig apply -f -

Applying a MeshConfig replaces the whole singleton: pass --base with your
MeshConfig file so its other settings (ports, authz and rate limit
addresses) are kept.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runDevIssuer(g, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.out, "out", "", "file of the private key (PEM; created if absent) (required)")
	fl.StringVar(&f.issuer, "issuer", "", "the issuer URL (iss claim) (required)")
	fl.StringVar(&f.alg, "alg", "ES256", "signature algorithm of a new key: ES256 or RS256")
	fl.StringVar(&f.audience, "audience", "tenantmesh", "audience the MeshConfig requires (empty: none)")
	fl.StringVar(&f.base, "base", "", "MeshConfig manifest to add the issuer to (default: an otherwise empty MeshConfig)")
	return c
}

func runDevIssuer(g *globals, f devIssuerFlags) error {
	if f.out == "" || f.issuer == "" {
		return usageError{errors.New("--out and --issuer are required")}
	}
	fmt.Fprintln(g.stderr, devWarning)
	key, created, err := loadOrCreateIssuerKey(f.out, f.alg)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(g.stderr, "created %s key %s\n", f.alg, f.out)
	} else {
		fmt.Fprintf(g.stderr, "using existing key %s\n", f.out)
	}
	mesh, err := baseMeshConfig(g, f.base)
	if err != nil {
		return err
	}
	iss, err := devJWTIssuer(key, f.issuer, f.audience)
	if err != nil {
		return err
	}
	// Replace an earlier entry for the same issuer (a rotated dev key).
	kept := mesh.Spec.JWT[:0]
	for _, j := range mesh.Spec.JWT {
		if j.Issuer != f.issuer {
			kept = append(kept, j)
		}
	}
	mesh.Spec.JWT = append(kept, iss)
	if errs := tenants.Validate(mesh, nil); len(errs) > 0 {
		return fmt.Errorf("the MeshConfig would not validate: %w", errs)
	}
	if g.output == "json" {
		return printJSON(g.stdout, mesh)
	}
	return printYAML(g.stdout, mesh)
}

// baseMeshConfig reads the MeshConfig of file, or starts an empty one.
func baseMeshConfig(g *globals, file string) (*tenants.MeshConfig, error) {
	if file == "" {
		return &tenants.MeshConfig{
			TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindMeshConfig},
			Metadata: tenants.ObjectMeta{Name: tenants.MeshConfigName},
		}, nil
	}
	docs, err := tenants.Load(file, g.stdin)
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		if m, ok := d.Object.(*tenants.MeshConfig); ok {
			return m, nil
		}
	}
	return nil, fmt.Errorf("--base %s holds no MeshConfig", file)
}

// devJWTIssuer is the platform issuer entry trusting key's public half.
func devJWTIssuer(key crypto.Signer, issuer, audience string) (tenants.JWTIssuer, error) {
	jwk, alg, err := publicJWK(key.Public())
	if err != nil {
		return tenants.JWTIssuer{}, err
	}
	set, err := json.Marshal(map[string]any{"keys": []map[string]string{jwk}})
	if err != nil {
		return tenants.JWTIssuer{}, fmt.Errorf("encode JWKS: %w", err)
	}
	iss := tenants.JWTIssuer{Issuer: issuer, JWKS: string(set), Algorithms: []string{alg},
		TenantClaim: "tenant_id", RolesClaim: "roles"}
	if audience != "" {
		iss.Audiences = []string{audience}
	}
	return iss, nil
}

type issueFlags struct {
	keyFile, issuer, tenant, sub, audience string
	roles                                  []string
	ttl                                    time.Duration
}

func newTokenIssueCmd(g *globals) *cobra.Command {
	f := issueFlags{}
	c := &cobra.Command{
		Use:   "issue",
		Short: "DEV ONLY: sign a JWT for a tenant with the dev issuer's key",
		Long: devWarning + `

Prints a JWT (RS256 or ES256, after the key) with iss, sub, aud, tenant_id,
roles, iat, nbf, exp and jti, to send as "Authorization: Bearer <token>".`,
		Example: `  TOKEN=$(tenantmesh token issue --issuer-key dev-issuer.pem --issuer https://dev-issuer.local --tenant tenant-a --roles admin,user)
  curl -H "Authorization: Bearer $TOKEN" -H "Host: tenant-a.api.example.com" localhost:10000/api/executive/summary`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runTokenIssue(g, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.keyFile, "issuer-key", "", "private key of the dev issuer (from token dev-issuer --out) (required)")
	fl.StringVar(&f.issuer, "issuer", "", "iss claim: the issuer URL the MeshConfig trusts (required)")
	fl.StringVar(&f.tenant, "tenant", "", "tenant_id claim (required)")
	fl.StringVar(&f.sub, "sub", "dev-user", "sub claim")
	fl.StringSliceVar(&f.roles, "roles", nil, "roles claim, comma-separated")
	fl.StringVar(&f.audience, "audience", "tenantmesh", "aud claim (empty: none)")
	fl.DurationVar(&f.ttl, "ttl", 15*time.Minute, "lifetime of the token")
	return c
}

func runTokenIssue(g *globals, f issueFlags) error {
	if f.keyFile == "" || f.issuer == "" || f.tenant == "" {
		return usageError{errors.New("--issuer-key, --issuer and --tenant are required")}
	}
	if f.ttl <= 0 {
		return usageError{fmt.Errorf("--ttl %s must be positive", f.ttl)}
	}
	fmt.Fprintln(g.stderr, devWarning)
	key, err := readIssuerKey(f.keyFile)
	if err != nil {
		return err
	}
	tok, err := signDevToken(key, f, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(g.stdout, tok)
	return err
}

// signDevToken signs the claims of f with key at time now.
func signDevToken(key crypto.Signer, f issueFlags, now time.Time) (string, error) {
	jwk, alg, err := publicJWK(key.Public())
	if err != nil {
		return "", err
	}
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	claims := jwt.MapClaims{
		"iss":       f.issuer,
		"sub":       f.sub,
		"tenant_id": f.tenant,
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(f.ttl).Unix(),
		"jti":       base64.RawURLEncoding.EncodeToString(jti),
	}
	if f.audience != "" {
		claims["aud"] = f.audience
	}
	if len(f.roles) > 0 {
		claims["roles"] = f.roles
	}
	t := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	t.Header["kid"] = jwk["kid"]
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// loadOrCreateIssuerKey reads the key in path, or creates one for alg.
func loadOrCreateIssuerKey(path, alg string) (crypto.Signer, bool, error) {
	key, err := readIssuerKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, false, usageError{fmt.Errorf("--alg %q: want ES256 or RS256", alg)}
	}
	if err != nil {
		return nil, false, fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("encode key: %w", err)
	}
	// O_EXCL: never overwrite a key somebody created meanwhile.
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create key file: %w", err)
	}
	if err := pem.Encode(fh, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		return nil, false, errors.Join(fmt.Errorf("write key %s: %w", path, err), fh.Close())
	}
	if err := fh.Close(); err != nil {
		return nil, false, fmt.Errorf("write key %s: %w", path, err)
	}
	return key, true, nil
}

func readIssuerKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("issuer key %s: not a PEM \"PRIVATE KEY\" (PKCS #8) file", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("issuer key %s: %w", path, err)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("issuer key %s: ECDSA keys must be P-256 (ES256)", path)
		}
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("issuer key %s: %T is neither an RSA nor a P-256 key", path, k)
}

// publicJWK renders a public key as a JWK with its RFC 7638 thumbprint
// as kid, and names the algorithm it signs with.
func publicJWK(pub crypto.PublicKey) (map[string]string, string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var jwk map[string]string
	var alg string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // 0x04 || X || Y, fixed width
		if err != nil {
			return nil, "", fmt.Errorf("encode EC key: %w", err)
		}
		size := (len(raw) - 1) / 2
		jwk = map[string]string{"kty": "EC", "crv": "P-256", "x": b64(raw[1 : 1+size]), "y": b64(raw[1+size:])}
		alg = "ES256"
	case *rsa.PublicKey:
		jwk = map[string]string{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
		alg = "RS256"
	default:
		return nil, "", fmt.Errorf("unsupported public key %T", pub)
	}
	// RFC 7638: the required members, in lexicographic order, no spaces —
	// which is what encoding/json does with a map.
	canon, err := json.Marshal(jwk)
	if err != nil {
		return nil, "", fmt.Errorf("thumbprint: %w", err)
	}
	sum := sha256.Sum256(canon)
	jwk["kid"] = b64(sum[:])
	jwk["use"] = "sig"
	jwk["alg"] = alg
	return jwk, alg, nil
}
