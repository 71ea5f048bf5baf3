package journal

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ErrPeerCert: the peer presented a certificate other than the pinned one.
var ErrPeerCert = errors.New("journal: peer certificate is not the pinned one")

// GenerateCert makes a self-signed ECDSA P-256 certificate and its key, PEM
// encoded, for node nodeID (at `nasctl cluster init` and `join`). Trust comes
// from pinning the certificate on the peer, not from a CA or from names, so
// it is valid for a century.
func GenerateCert(nodeID string) (certPEM, keyPEM []byte, err error) {
	if err := checkID("node ID", nodeID); err != nil {
		return nil, nil, fmt.Errorf("journal: generate certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: generate certificate: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("journal: generate certificate: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ftnas node " + nodeID, Organization: []string{"ftnas"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(100, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: generate certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: generate certificate: encode key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// certDER returns the DER bytes of the single certificate in certPEM.
func certDER(certPEM []byte) ([]byte, error) {
	b, rest := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("more than one PEM block")
	}
	if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		return nil, err
	}
	return b.Bytes, nil
}

// Fingerprint is the SHA-256 of the certificate in certPEM, in hex: what an
// operator compares when pairing nodes.
func Fingerprint(certPEM []byte) (string, error) {
	der, err := certDER(certPEM)
	if err != nil {
		return "", fmt.Errorf("journal: fingerprint: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// TLSConfig returns the TLS configuration for either end of the stream
// (tls.Dial or tls.Listen): TLS 1.3, presenting certPEM/keyPEM, demanding a
// client certificate, and accepting exactly one peer: the one whose
// certificate is peerCertPEM, byte for byte. No CA and no names are involved.
func TLSConfig(certPEM, keyPEM, peerCertPEM []byte) (*tls.Config, error) {
	own, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("journal: tls config: own certificate: %w", err)
	}
	pinned, err := certDER(peerCertPEM)
	if err != nil {
		return nil, fmt.Errorf("journal: tls config: peer certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{own},
		ClientAuth:   tls.RequireAnyClientCert,
		// Chain and name checks are replaced by the pin below, which runs
		// on both ends.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) != 1 {
				return fmt.Errorf("%w: %d certificates presented", ErrPeerCert, len(raw))
			}
			if !bytes.Equal(raw[0], pinned) {
				sum := sha256.Sum256(raw[0])
				return fmt.Errorf("%w: got fingerprint %s", ErrPeerCert, hex.EncodeToString(sum[:]))
			}
			return nil
		},
	}, nil
}
