/* Ed25519 signing and verification, SHA-256 and Base64: RFC 8032 §7.1 TEST 1 and TEST 2 through
 * a PEM file (public key and signature must equal the RFC's bytes); the public key PEM path;
 * altered messages and signatures and another key's signature fail; RSA, EC, encrypted,
 * public-key-as-private, garbage and missing files are refused with the problem named; private key
 * files that group or others may access are refused, naming the mode and chmod 600; Base64
 * round trips and refusals; SHA-256 of "abc" (FIPS 180-2). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/signature.h"
#include "util/testutil.h"

static int passed;
static char dir[256];

#define OK(cond) CHECK_COUNT(passed, cond) /* evaluates cond once */

static void unhex(const char *hex, unsigned char *out)
{
    for (size_t i = 0; hex[2 * i]; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

static const char *tmp_path(const char *name)
{
    static char buf[8][320];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 320, "%s/%s", dir, name);
    return p;
}

/* Writes `pkey` as PEM: private (PKCS#8, optionally encrypted with passphrase "pw"; mode 0600, as
 * a signing key must be) or public. */
static int write_pem(const char *path, EVP_PKEY *pkey, int public_only, int encrypt)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    if (!public_only && fchmod(fileno(f), 0600)) {
        fclose(f);
        return 0;
    }
    int ok = public_only ? PEM_write_PUBKEY(f, pkey)
             : encrypt ? PEM_write_PrivateKey(f, pkey, EVP_aes_256_cbc(), (unsigned char *)"pw", 2,
                                              NULL, NULL)
                       : PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok == 1;
}

static const struct {
    const char *secret, *public, *msg, *sig;
} rfc8032[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
     "d25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
     "387b2eaeb4302aeeb00d291612bb0c00"},
};

static void test_rfc8032(void)
{
    for (int t = 0; t < 2; t++) {
        unsigned char sk[32], want_pub[32], want_sig[64], msg[1];
        unhex(rfc8032[t].secret, sk);
        unhex(rfc8032[t].public, want_pub);
        unhex(rfc8032[t].sig, want_sig);
        size_t mlen = strlen(rfc8032[t].msg) / 2;
        unhex(rfc8032[t].msg, msg);

        EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk, 32);
        CHECK(pkey != NULL);
        if (!pkey)
            continue;
        const char *priv = tmp_path(t ? "test2.pem" : "test1.pem");
        const char *pubp = tmp_path(t ? "test2.pub.pem" : "test1.pub.pem");
        OK(write_pem(priv, pkey, 0, 0));
        OK(write_pem(pubp, pkey, 1, 0));
        EVP_PKEY_free(pkey);

        hp_error err = {0};
        unsigned char sig[64], pub[32];
        hp_status st = hp_ed25519_sign(priv, msg, mlen, sig, pub, &err);
        CHECK_MSG(st == HP_OK, "%s", err.msg);
        passed += st == HP_OK;
        OK(memcmp(pub, want_pub, 32) == 0);
        OK(memcmp(sig, want_sig, 64) == 0);
        OK(hp_ed25519_verify(want_pub, msg, mlen, want_sig, &err) == HP_OK);

        unsigned char pub2[32] = {0};
        st = hp_ed25519_load_public(pubp, pub2, &err);
        CHECK_MSG(st == HP_OK, "%s", err.msg);
        OK(st == HP_OK && memcmp(pub2, want_pub, 32) == 0);

        /* A private key file where a public key belongs is refused. */
        hp_error_clear(&err);
        OK(hp_ed25519_load_public(priv, pub2, &err) == HP_ERR_INVALID &&
           strstr(err.msg, "not a public key"));

        /* A public key file where the private key belongs is refused. */
        hp_error_clear(&err);
        OK(hp_ed25519_sign(pubp, msg, mlen, sig, pub, &err) == HP_ERR_INVALID &&
           strstr(err.msg, "public key"));
    }
}

static void test_tamper(void)
{
    const char *priv = tmp_path("test1.pem");
    const char msg[] = "{\"slide_id\":\"3f2a9c01b7de\",\"tumor_fraction\":0.21}";
    unsigned char sig[64], pub[32];
    hp_error err = {0};
    OK(hp_ed25519_sign(priv, msg, strlen(msg), sig, pub, &err) == HP_OK);
    OK(hp_ed25519_verify(pub, msg, strlen(msg), sig, &err) == HP_OK);

    char bad[sizeof msg];
    memcpy(bad, msg, sizeof msg);
    bad[20] ^= 1;
    OK(hp_ed25519_verify(pub, bad, strlen(bad), sig, &err) == HP_ERR_INVALID &&
       strstr(err.msg, "does not match"));
    hp_error_clear(&err);
    OK(hp_ed25519_verify(pub, msg, strlen(msg) - 1, sig, &err) == HP_ERR_INVALID);
    for (int i = 0; i < 64; i += 21) {
        unsigned char s2[64];
        memcpy(s2, sig, 64);
        s2[i] ^= 0x80;
        hp_error_clear(&err);
        OK(hp_ed25519_verify(pub, msg, strlen(msg), s2, &err) == HP_ERR_INVALID);
    }
    /* Signed by another key (RFC TEST 2's) against this key's public half. */
    unsigned char sig2[64], pub2[32];
    OK(hp_ed25519_sign(tmp_path("test2.pem"), msg, strlen(msg), sig2, pub2, &err) == HP_OK);
    hp_error_clear(&err);
    OK(hp_ed25519_verify(pub, msg, strlen(msg), sig2, &err) == HP_ERR_INVALID);
    OK(hp_ed25519_verify(pub2, msg, strlen(msg), sig2, &err) == HP_OK);

    /* Fingerprint = SHA-256 of the raw key. */
    char fp[65], h[65];
    OK(hp_key_fingerprint(pub, fp) == HP_OK && hp_sha256_hex(pub, 32, h) == HP_OK &&
       strcmp(fp, h) == 0 && strlen(fp) == 64);
}

static void test_refusals(void)
{
    hp_error err = {0};
    unsigned char sig[64], pub[32];
    const char msg[] = "x";

    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK(rsa && ec);
    if (rsa && ec) {
        OK(write_pem(tmp_path("rsa.pem"), rsa, 0, 0));
        OK(write_pem(tmp_path("rsa.pub.pem"), rsa, 1, 0));
        OK(write_pem(tmp_path("ec.pem"), ec, 0, 0));
        hp_error_clear(&err);
        OK(hp_ed25519_sign(tmp_path("rsa.pem"), msg, 1, sig, pub, &err) == HP_ERR_UNSUPPORTED &&
           strstr(err.msg, "RSA") && strstr(err.msg, "Ed25519"));
        hp_error_clear(&err);
        OK(hp_ed25519_sign(tmp_path("ec.pem"), msg, 1, sig, pub, &err) == HP_ERR_UNSUPPORTED &&
           strstr(err.msg, "EC"));
        hp_error_clear(&err);
        OK(hp_ed25519_load_public(tmp_path("rsa.pub.pem"), pub, &err) == HP_ERR_UNSUPPORTED &&
           strstr(err.msg, "RSA"));
    }
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);

    /* An encrypted Ed25519 key: refused without prompting for a passphrase. */
    unsigned char sk[32];
    unhex(rfc8032[0].secret, sk);
    EVP_PKEY *ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk, 32);
    OK(ed && write_pem(tmp_path("enc.pem"), ed, 0, 1));
    EVP_PKEY_free(ed);
    hp_error_clear(&err);
    OK(hp_ed25519_sign(tmp_path("enc.pem"), msg, 1, sig, pub, &err) == HP_ERR_UNSUPPORTED &&
       strstr(err.msg, "encrypted"));

    /* Garbage, a damaged PEM body, a missing file. */
    FILE *f = fopen(tmp_path("garbage.pem"), "w");
    if (f) {
        fputs("this is not a key\n\x01\x02\x03", f);
        fclose(f);
    }
    hp_error_clear(&err);
    OK(hp_ed25519_sign(tmp_path("garbage.pem"), msg, 1, sig, pub, &err) == HP_ERR_INVALID &&
       strstr(err.msg, "not a PEM file"));
    hp_error_clear(&err);
    OK(hp_ed25519_load_public(tmp_path("garbage.pem"), pub, &err) == HP_ERR_INVALID &&
       strstr(err.msg, "not a PEM file"));
    f = fopen(tmp_path("damaged.pem"), "w");
    if (f) {
        fchmod(fileno(f), 0600);
        fputs("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI!!!!\n-----END PRIVATE KEY-----\n", f);
        fclose(f);
    }
    hp_error_clear(&err);
    OK(hp_ed25519_sign(tmp_path("damaged.pem"), msg, 1, sig, pub, &err) == HP_ERR_INVALID &&
       strstr(err.msg, "damaged.pem"));
    hp_error_clear(&err);
    OK(hp_ed25519_sign(tmp_path("missing.pem"), msg, 1, sig, pub, &err) == HP_ERR_IO &&
       strstr(err.msg, "missing.pem"));

    /* A public key that is not a curve point is refused, not crashed on. */
    unsigned char junk[32], s0[64] = {0};
    memset(junk, 0xff, 32);
    hp_error_clear(&err);
    OK(hp_ed25519_verify(junk, msg, 1, s0, &err) == HP_ERR_INVALID && err.msg[0]);
}

static void test_sha256_base64(void)
{
    char hex[65];
    OK(hp_sha256_hex("abc", 3, hex) == HP_OK &&
       strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    OK(hp_sha256_hex(NULL, 0, hex) == HP_OK &&
       strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);

    /* RFC 4648 §10. */
    static const char *const vec[][2] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    for (int i = 0; i < 7; i++) {
        char *e = hp_base64_encode(vec[i][0], strlen(vec[i][0]));
        OK(e && strcmp(e, vec[i][1]) == 0);
        free(e);
        unsigned char out[8];
        size_t n = 99;
        hp_error err = {0};
        OK(hp_base64_decode(vec[i][1], out, sizeof out, &n, &err) == HP_OK &&
           n == strlen(vec[i][0]) && memcmp(out, vec[i][0], n) == 0);
    }
    /* All byte values, and a 64-byte signature into an exact-size buffer. */
    unsigned char all[256], back[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char *e = hp_base64_encode(all, 256);
    size_t n = 0;
    hp_error err = {0};
    OK(e && strchr(e, '+') && strchr(e, '/') &&
       hp_base64_decode(e, back, 256, &n, &err) == HP_OK && n == 256 && memcmp(all, back, 256) == 0);
    hp_error_clear(&err);
    OK(e && hp_base64_decode(e, back, 255, &n, &err) == HP_ERR_INVALID && strstr(err.msg, "255"));
    free(e);

    static const char *const bad[] = {"Zg=", "Zg", "Z===", "Zh==", "Zm9=", "Zm 9v", "Zm9v\n",
                                      "Zm-v", "=m9v", "Zg==Zg==", "Zm=v"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char out[16];
        hp_error_clear(&err);
        hp_status st = hp_base64_decode(bad[i], out, sizeof out, &n, &err);
        CHECK_MSG(st == HP_ERR_INVALID && err.msg[0], "\"%s\" was accepted", bad[i]);
        passed += st == HP_ERR_INVALID;
    }
}

/* A private key its group or everyone may access is refused with the mode and the fix named; the
 * same key at 0600 or 0400 signs. A public key file of any mode is never taken for a private one
 * because of its mode. */
static void test_key_modes(void)
{
    const char *priv = tmp_path("test1.pem");
    const char msg[] = "m";
    unsigned char sig[64], pub[32];
    static const struct {
        unsigned mode;
        int ok;
        const char *text;
    } cases[] = {{0666, 0, "0666"}, {0644, 0, "0644"}, {0640, 0, "0640"}, {0604, 0, "0604"},
                 {0620, 0, "0620"}, {0600, 1, NULL},   {0400, 1, NULL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hp_error err = {0};
        CHECK(chmod(priv, cases[i].mode) == 0);
        hp_status st = hp_ed25519_sign(priv, msg, 1, sig, pub, &err);
        int ok = cases[i].ok ? st == HP_OK
                             : st == HP_ERR_INVALID && strstr(err.msg, cases[i].text) && strstr(err.msg, "chmod 600") &&
                                   strstr(err.msg, "test1.pem");
        CHECK_MSG(ok, "mode %04o: status %d \"%s\"", cases[i].mode, st, err.msg);
        passed += !!ok;
    }
    chmod(priv, 0600);
    hp_error err = {0};
    CHECK(chmod(tmp_path("test1.pub.pem"), 0644) == 0);
    OK(hp_ed25519_sign(tmp_path("test1.pub.pem"), msg, 1, sig, pub, &err) == HP_ERR_INVALID &&
       strstr(err.msg, "public key") && !strstr(err.msg, "chmod"));
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/hp_sig_XXXXXX", hp_test_env("TMPDIR", "/tmp"));
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_sha256_base64();
    test_rfc8032();
    test_tamper();
    test_refusals();
    test_key_modes();
    static const char *const files[] = {"test1.pem", "test1.pub.pem", "test2.pem", "test2.pub.pem",
                                        "rsa.pem",   "rsa.pub.pem",   "ec.pem",    "enc.pem",
                                        "garbage.pem", "damaged.pem"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(tmp_path(files[i]));
    rmdir(dir);
    return hp_test_finish("test_signature", passed);
}
