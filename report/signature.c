/* Ed25519 and Base64 over OpenSSL 3: see signature.h. */
#include "report/signature.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Key files are a few hundred bytes; anything much larger is not a key. */
enum { PEM_MAX = 1 << 16 };

/* OpenSSL's last reason, for a message, and an emptied error queue so a later caller on this
 * thread does not see our failure as its own. */
static const char *ossl_reason(char buf[256])
{
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, 256);
    else
        snprintf(buf, 256, "no detail from OpenSSL");
    ERR_clear_error();
    return buf;
}

hp_status hp_key_fingerprint(const unsigned char pub[32], char out[65])
{
    if (!pub || !out)
        return HP_ERR_INVALID;
    return hp_sha256_hex(pub, 32, out);
}

/* No passphrase is ever prompted for: a report signer runs unattended. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* Reads a PEM file whole and names its first block's label ("PRIVATE KEY", "PUBLIC KEY", ...). */
static hp_status read_pem(const char *path, const char *what, char **text, size_t *len,
                          char label[64], unsigned *mode, hp_error *err)
{
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot open %s: %s", path, what, strerror(errno));
    /* The mode of the file opened, so the file checked is the file read. */
    struct stat sb;
    *mode = fstat(fileno(f), &sb) == 0 ? (unsigned)(sb.st_mode & 07777) : 0777;
    char *buf = malloc(PEM_MAX + 1);
    if (!buf) {
        fclose(f);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory reading %s", path, what);
    }
    size_t n = fread(buf, 1, PEM_MAX + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        return hp_error_set(err, HP_ERR_IO, "%s: read error on %s", path, what);
    }
    if (n > PEM_MAX) {
        free(buf);
        return hp_error_set(err, HP_ERR_INVALID, "%s: %s is larger than %d bytes; not a key file",
                            path, what, PEM_MAX);
    }
    buf[n] = '\0';
    const char *b = memmem(buf, n, "-----BEGIN ", 11);
    const char *e = b ? strstr(b + 11, "-----") : NULL;
    if (!b || !e || e - (b + 11) >= 64 || memchr(b, '\n', (size_t)(e - b))) {
        free(buf);
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: %s is not a PEM file (no \"-----BEGIN ...-----\" line)", path, what);
    }
    memcpy(label, b + 11, (size_t)(e - (b + 11)));
    label[e - (b + 11)] = '\0';
    *text = buf;
    *len = n;
    return HP_OK;
}

static const char *key_type_name(const EVP_PKEY *pkey)
{
    const char *name = EVP_PKEY_get0_type_name(pkey);
    if (!name)
        name = OBJ_nid2sn(EVP_PKEY_get_base_id(pkey));
    return name ? name : "unknown";
}

static hp_status load_private(const char *path, const char *passphrase, EVP_PKEY **out, hp_error *err)
{
    *out = NULL;
    char *text = NULL, label[64];
    size_t len = 0;
    unsigned mode = 0;
    hp_status st = read_pem(path, "the private key", &text, &len, label, &mode, err);
    if (st)
        return st;
    int encrypted = strcmp(label, "ENCRYPTED PRIVATE KEY") == 0 || strstr(text, "Proc-Type: 4,ENCRYPTED");
    if (encrypted && !passphrase) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                          "%s: the private key is encrypted and no passphrase can be given; "
                          "store it unencrypted (openssl pkey -in KEY -out PLAIN) on protected "
                          "storage",
                          path);
        goto done;
    }
    if (strcmp(label, "PUBLIC KEY") == 0 || strcmp(label, "CERTIFICATE") == 0) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: holds a %s, not a private key; signing needs the private key "
                          "(openssl genpkey -algorithm ed25519)",
                          path, strcmp(label, "PUBLIC KEY") == 0 ? "public key" : "certificate");
        goto done;
    }
    /* A signing key that others can read signs for anyone who reads it. */
    if (mode & 077) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: the private key is accessible to %s (mode %04o); a signing key must be private "
                          "to its owner: chmod 600 %s",
                          path, (mode & 007) ? "everyone" : "its group", mode, path);
        goto done;
    }
    if (strcmp(label, "OPENSSH PRIVATE KEY") == 0) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                          "%s: an OpenSSH-format key; give a PKCS#8 PEM key "
                          "(openssl genpkey -algorithm ed25519)",
                          path);
        goto done;
    }
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (!bio) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory reading the private key", path);
        goto done;
    }
    /* With a passphrase OpenSSL takes it as the callback's argument (PEM_read_bio_PrivateKey). */
    EVP_PKEY *pkey = passphrase ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)passphrase)
                                : PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    char why[256];
    if (!pkey && encrypted) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: the passphrase does not unlock the private key", path);
        goto done;
    }
    if (!pkey) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: cannot read a private key from PEM block \"%s\" (%s)",
                          path, label, ossl_reason(why));
        goto done;
    }
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                          "%s: holds a key of type %s; report signatures need an Ed25519 key "
                          "(openssl genpkey -algorithm ed25519)",
                          path, key_type_name(pkey));
        EVP_PKEY_free(pkey);
        goto done;
    }
    *out = pkey;
done:
    /* The file held a secret: do not leave it in freed heap memory. */
    OPENSSL_cleanse(text, len);
    free(text);
    return st;
}

hp_status hp_ed25519_sign(const char *private_key_pem_path, const void *msg, size_t len,
                          unsigned char sig[64], unsigned char pub[32], hp_error *err)
{
    return hp_ed25519_sign_unlocked(private_key_pem_path, NULL, msg, len, sig, pub, err);
}

hp_status hp_ed25519_sign_unlocked(const char *private_key_pem_path, const char *passphrase, const void *msg,
                                   size_t len, unsigned char sig[64], unsigned char pub[32], hp_error *err)
{
    if (!private_key_pem_path || !sig || (!msg && len))
        return hp_error_set(err, HP_ERR_INVALID, "hp_ed25519_sign: NULL argument");
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *ctx = NULL;
    char why[256];
    hp_status st = load_private(private_key_pem_path, passphrase, &pkey, err);
    if (st)
        return st;
    if (pub) {
        size_t publen = 32;
        if (EVP_PKEY_get_raw_public_key(pkey, pub, &publen) != 1 || publen != 32) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s: cannot get the Ed25519 public key (%s)",
                              private_key_pem_path, ossl_reason(why));
            goto fail;
        }
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx) {
        st = hp_error_set(err, HP_ERR_NOMEM, "Ed25519 signing: out of memory");
        goto fail;
    }
    size_t siglen = 64;
    /* Ed25519 hashes internally (SHA-512, RFC 8032): no digest is named here. */
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, len ? msg : (const void *)"", len) != 1 ||
        siglen != 64) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: Ed25519 signing failed (%s)",
                          private_key_pem_path, ossl_reason(why));
        goto fail;
    }
fail:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return st;
}

hp_status hp_ed25519_verify(const unsigned char pub[32], const void *msg, size_t len,
                            const unsigned char sig[64], hp_error *err)
{
    if (!pub || !sig || (!msg && len))
        return hp_error_set(err, HP_ERR_INVALID, "hp_ed25519_verify: NULL argument");
    char why[256];
    hp_status st = HP_OK;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    if (!pkey)
        return hp_error_set(err, HP_ERR_INVALID, "Ed25519 verification: not a valid public key (%s)",
                            ossl_reason(why));
    ctx = EVP_MD_CTX_new();
    if (!ctx) {
        st = hp_error_set(err, HP_ERR_NOMEM, "Ed25519 verification: out of memory");
        goto fail;
    }
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
        st = hp_error_set(err, HP_ERR_INVALID, "Ed25519 verification could not start (%s)",
                          ossl_reason(why));
        goto fail;
    }
    int r = EVP_DigestVerify(ctx, sig, 64, len ? msg : (const void *)"", len);
    ERR_clear_error();
    if (r != 1) {
        char fp[65];
        hp_key_fingerprint(pub, fp);
        st = hp_error_set(err, HP_ERR_INVALID,
                          "the Ed25519 signature does not match the data and the public key "
                          "(key fingerprint %.16s...): the data was altered, or it was signed "
                          "by another key",
                          fp);
    }
fail:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return st;
}

hp_status hp_ed25519_load_public(const char *pem_path, unsigned char pub[32], hp_error *err)
{
    if (!pem_path || !pub)
        return hp_error_set(err, HP_ERR_INVALID, "hp_ed25519_load_public: NULL argument");
    char *text = NULL, label[64], why[256];
    size_t len = 0;
    unsigned mode = 0;
    hp_status st = read_pem(pem_path, "the public key", &text, &len, label, &mode, err);
    if (st)
        return st;
    EVP_PKEY *pkey = NULL;
    if (strcmp(label, "PUBLIC KEY") != 0) {
        int secret = strstr(label, "PRIVATE KEY") != NULL;
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: holds a PEM \"%s\" block, not a public key%s", pem_path, label,
                          secret ? "; a verifier needs only the public key "
                                   "(openssl pkey -in KEY -pubout)"
                                 : "");
        goto done;
    }
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (!bio) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory reading the public key", pem_path);
        goto done;
    }
    pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (!pkey) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: cannot read a public key (%s)", pem_path,
                          ossl_reason(why));
        goto done;
    }
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                          "%s: holds a public key of type %s; report signatures use Ed25519", pem_path,
                          key_type_name(pkey));
        goto done;
    }
    size_t publen = 32;
    if (EVP_PKEY_get_raw_public_key(pkey, pub, &publen) != 1 || publen != 32) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: cannot get the raw Ed25519 public key (%s)",
                          pem_path, ossl_reason(why));
        goto done;
    }
done:
    EVP_PKEY_free(pkey);
    free(text);
    return st;
}

/* ---- Base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *hp_base64_encode(const void *data, size_t len)
{
    if (!data && len)
        return NULL;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    const unsigned char *in = data;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

hp_status hp_base64_decode(const char *b64, unsigned char *out, size_t cap, size_t *out_len,
                           hp_error *err)
{
    if (out_len)
        *out_len = 0;
    if (!b64 || (!out && cap) || !out_len)
        return hp_error_set(err, HP_ERR_INVALID, "hp_base64_decode: NULL argument");
    size_t n = strlen(b64);
    if (n % 4)
        return hp_error_set(err, HP_ERR_INVALID,
                            "Base64: length %zu is not a multiple of 4 (padding missing or text cut)",
                            n);
    size_t pad = n && b64[n - 1] == '=' ? (b64[n - 2] == '=' ? 2 : 1) : 0;
    size_t need = n / 4 * 3 - pad;
    if (need > cap)
        return hp_error_set(err, HP_ERR_INVALID, "Base64: decodes to %zu bytes, more than the %zu expected",
                            need, cap);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int last = i + 4 == n;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)b64[i + k];
            if (c == '=' && last && (size_t)k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_value(c);
            if (v[k] < 0)
                return hp_error_set(err, HP_ERR_INVALID,
                                    c == '=' ? "Base64: misplaced '=' at offset %zu"
                                             : "Base64: character at offset %zu is outside the alphabet",
                                    i + (size_t)k);
        }
        unsigned bits = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        if (last && pad && (bits & (pad == 2 ? 0xFFFFu : 0xFFu)))
            return hp_error_set(err, HP_ERR_INVALID,
                                "Base64: non-zero bits under the padding (not a canonical encoding)");
        size_t emit = last ? 3 - pad : 3;
        unsigned char bytes[3] = {(unsigned char)(bits >> 16), (unsigned char)(bits >> 8),
                                  (unsigned char)bits};
        memcpy(out + o, bytes, emit);
        o += emit;
    }
    *out_len = o;
    return HP_OK;
}
