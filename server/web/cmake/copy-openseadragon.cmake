# Copies OpenSeadragon (fetched by `npm ci` in server/web, which scripts/install-deps.sh runs)
# into the viewer's assets. Run at build time, not configure time, so that a build folder
# configured before `npm ci` still gets it on the next build.
#   cmake -DOSD_DIR=<node_modules/openseadragon/build/openseadragon> -DWEB_OUT=<build/web> -P this
if(EXISTS ${OSD_DIR}/openseadragon.min.js)
  file(MAKE_DIRECTORY ${WEB_OUT}/vendor ${WEB_OUT}/images)
  file(COPY ${OSD_DIR}/openseadragon.min.js DESTINATION ${WEB_OUT}/vendor)
  file(COPY ${OSD_DIR}/images/ DESTINATION ${WEB_OUT}/images)
else()
  message(WARNING "histoplan: OpenSeadragon is missing (run `npm ci` in server/web, or "
                  "scripts/install-deps.sh); the viewer page will not load without it")
endif()
