/* regions.xml in ASAP's annotation format (ASAP / multiresolutionimageinterface, as in the
 * CAMELYON data sets):
 *
 *   <?xml version="1.0"?>
 *   <ASAP_Annotations>
 *     <Annotations>
 *       <Annotation Name="R5" Type="Polygon" PartOfGroup="invasive" Color="#d55e00">
 *         <Coordinates>
 *           <Coordinate Order="0" X="1024" Y="512" />
 *           ...
 *         </Coordinates>
 *       </Annotation>
 *     </Annotations>
 *     <AnnotationGroups>
 *       <Group Name="invasive" PartOfGroup="None" Color="#d55e00"><Attributes /></Group>
 *       <Group Name="Exclusion" PartOfGroup="None" Color="#000000"><Attributes /></Group>
 *     </AnnotationGroups>
 *   </ASAP_Annotations>
 *
 * Coordinates are level-0 pixels. ASAP polygons are implicitly closed, so the first point is not
 * repeated. Annotations are named by the region id (pipeline/regions.h), as every output names
 * them. ASAP has no holes: each hole is its own Polygon ("R5 hole 1") in the group
 * "Exclusion", which ASAP's annotation-to-mask conversion (and the CAMELYON convention) treats as
 * cut out when that group is drawn after the class groups. One group per class that has regions;
 * "Exclusion" only when there are holes. Names are XML-escaped. Written under a temporary name,
 * then renamed. */
#ifndef HP_WRITE_ASAP_XML_H
#define HP_WRITE_ASAP_XML_H

#include "common/status.h"
#include "pipeline/heatmap.h"
#include "pipeline/regions.h"

hp_status hp_write_regions_asap_xml(const char *path, const hp_heatmap_grid *g,
                                    const hp_regions *rs, hp_error *err);

#endif
