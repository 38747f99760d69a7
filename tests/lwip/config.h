/* config.h — empty: lwIP's unit suite (lwip_check.h) includes a build-configuration header. */
