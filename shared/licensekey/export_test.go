package licensekey

// ExportForVectors exposes the payload and the signed message of a parsed
// key, for the test vectors.
func ExportForVectors(p *Parsed) (payload, message []byte) {
	return p.message[len(signedContext)+1+len(p.Claims.CustomerID):], p.message
}
