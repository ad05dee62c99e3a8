# Writes INPUT's bytes into OUTPUT as `extern const char SYMBOL[]` (a NUL-terminated string).
file(READ ${INPUT} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," content "${content}")
file(WRITE ${OUTPUT} "namespace clisc { extern const char ${SYMBOL}[] = {${content} 0x00}; }\n")
