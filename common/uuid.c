/* uuid.c — UUID v4 and the 8-4-4-4-12 text form. */
#include <stdint.h>
#include <string.h>

#include "crypto.h"
#include "uuid.h"

int uuid_v4(char out[UUID_STR_LEN + 1])
{
  static const char digits[] = "0123456789abcdef";
  uint8_t b[16];
  size_t o = 0;

  if (crypto_random(b, sizeof b) != 0)
    return -1;
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  for (size_t i = 0; i < sizeof b; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = digits[b[i] >> 4];
    out[o++] = digits[b[i] & 0x0f];
  }
  out[o] = '\0';
  return 0;
}

static bool is_hex(unsigned char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool uuid_valid(const char *s)
{
  if (!s)
    return false;
  for (size_t i = 0; i < UUID_STR_LEN; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return false;
    } else if (!is_hex(c)) {
      return false; /* also stops at the NUL of a short string */
    }
  }
  return s[UUID_STR_LEN] == '\0';
}

void uuid_lower(const char *s, char out[UUID_STR_LEN + 1])
{
  for (size_t i = 0; i < UUID_STR_LEN; i++)
    out[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a') : s[i];
  out[UUID_STR_LEN] = '\0';
}
