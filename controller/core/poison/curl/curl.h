/* Poison header: the decision code (controller/core/) must not do I/O.
 * It is first on the include path of controller/core/ only (see the Makefile),
 * so an #include of this header there fails the build. */
#error "controller/core/ is the pure decision code: it must not include <curl/curl.h> (move the I/O into controller/)"
