import { defineSuite } from '../suite.js';

defineSuite('kit', 'basics');
